"""Deploy the app to a Hugging Face Space: ``python -m deploy USER/SPACE`` (see docs/space.md).

A tool, not part of the product: it reads the repository's files and imports none of the app's
packages (checked by .importlinter).  ``deploy.tree`` builds the Space tree, ``deploy.hub``
uploads it with huggingface_hub.
"""
