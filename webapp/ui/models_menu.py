"""The model menu of the Live, Image and Video tabs: the offered models, and under the menu one line
on the chosen one (id, version, FER2013 PrivateTest accuracy, where the file comes from), so that a
user knows what they get before they press anything."""
from __future__ import annotations

import gradio as gr


def model_menu(settings, elem_id: str) -> gr.Dropdown:
    """A model dropdown whose ``info`` line follows the choice (``ModelSpec.about``)."""
    value = settings.default_ui_model
    # min_width: beside the preset on a wide screen, on a row of its own on a phone (at half a phone's width the
    # chosen model's name was cut short)
    menu = gr.Dropdown(settings.model_choices(), value=value, label="Model", elem_id=elem_id,
                       info=settings.model_about(value), min_width=260)
    menu.input(lambda m: gr.update(info=settings.model_about(m)), inputs=[menu], outputs=[menu],
               show_api=False, queue=False)
    return menu
