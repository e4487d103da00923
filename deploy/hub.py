"""Upload a Space tree to the Hugging Face Hub with ``huggingface_hub``, all or nothing.

Order: who am I (token check) -> create the Space repo (SDK, visibility, hardware) -> secrets and
variables (so the first build and start already have them) -> one commit with the whole tree (files
of an older version that are not in the tree are deleted in the same commit).  If anything after the
repo's creation fails, a Space created by this run is deleted again; an existing Space (``--update``)
keeps its previous version, since a commit is atomic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class DeployError(Exception):
    """A failure with a message for the user (no traceback)."""


@dataclass
class Plan:
    repo_id: str  # "name" or "namespace/name"
    tree: Path
    sdk: str
    private: bool = False
    hardware: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    update: bool = False


def _network_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx

        errs.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - huggingface_hub 1.x always has httpx
        pass
    try:
        import requests

        errs.append(requests.exceptions.ConnectionError)
        errs.append(requests.exceptions.Timeout)
    except ImportError:
        pass
    return tuple(errs)


def _status(err: BaseException) -> int | None:
    resp = getattr(err, "response", None)
    return getattr(resp, "status_code", None)


def _why(err: BaseException) -> str:
    """The server's own message if it gave one, else the exception's first line."""
    resp = getattr(err, "response", None)
    msg = None
    if resp is not None:
        msg = resp.headers.get("X-Error-Message")
        if not msg:
            try:
                msg = resp.json().get("error")
            except Exception:  # noqa: BLE001 - any non-JSON body
                msg = None
    if msg:
        return msg
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def deploy(plan: Plan, log=print) -> str:
    """Create or update the Space; returns its URL.  Raises DeployError with a clear message."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    net = _network_errors()
    endpoint = constants.ENDPOINT
    token = get_token()
    if not token:
        raise DeployError("No Hugging Face token. Set HF_TOKEN to a token with write access "
                          "(https://huggingface.co/settings/tokens) or log in once with `hf auth login`. "
                          "Nothing was uploaded.")
    api = HfApi(token=token)

    try:
        me = api.whoami()
    except net as e:
        raise DeployError(f"Cannot reach the Hub at {endpoint} ({_why(e)}). Nothing was uploaded.") from e
    except HfHubHTTPError as e:
        if _status(e) == 401:
            raise DeployError("The Hugging Face token was refused (invalid or expired). Set HF_TOKEN to a valid "
                              "token with write access or run `hf auth login --force`. Nothing was uploaded.") from e
        raise DeployError(f"The Hub refused the token check: {_why(e)}. Nothing was uploaded.") from e
    user = me.get("name")
    namespaces = [user] + [o.get("name") for o in me.get("orgs", []) if o.get("name")]
    namespace, _, name = plan.repo_id.rpartition("/")
    namespace = namespace or user
    repo_id = f"{namespace}/{name}"
    if namespace not in namespaces:
        raise DeployError(f"You are logged in as {user!r}, who cannot create Spaces under {namespace!r} "
                          f"(your namespaces: {', '.join(namespaces)}). Choose one of yours, e.g. {user}/{name}. "
                          "Nothing was uploaded.")
    url = f"{endpoint}/spaces/{repo_id}"

    created = False
    try:
        api.create_repo(repo_id, repo_type="space", space_sdk=plan.sdk, private=plan.private,
                        space_hardware=plan.hardware)
        created = True
        log(f"created Space {repo_id} (sdk {plan.sdk}, {'private' if plan.private else 'public'}"
            f"{', hardware ' + plan.hardware if plan.hardware else ''})")
    except net as e:
        raise DeployError(f"Cannot reach the Hub at {endpoint} ({_why(e)}). Nothing was uploaded.") from e
    except HfHubHTTPError as e:
        code = _status(e)
        if code == 409 and plan.update:
            log(f"Space {repo_id} exists: updating it")
        elif code == 409:
            raise DeployError(f"A Space named {repo_id} already exists. To replace its files with this version, "
                              "run the same command with --update; or choose another name. Nothing was uploaded.") from e
        elif code in (401, 403):
            raise DeployError(f"Not allowed to create {repo_id}: {_why(e)} (does your token have write access "
                              f"to {namespace!r}?). Nothing was uploaded.") from e
        else:
            raise DeployError(f"The Hub refused to create {repo_id}: {_why(e)}. Nothing was uploaded.") from e

    try:
        if not created and plan.hardware:
            api.request_space_hardware(repo_id, plan.hardware)
            log(f"requested hardware {plan.hardware}")
        for key, value in plan.secrets.items():
            api.add_space_secret(repo_id, key, value)
            log(f"secret {key} set")
        for key, value in plan.variables.items():
            api.add_space_variable(repo_id, key, value)
            log(f"variable {key} = {value}")
        files = sorted(p.relative_to(plan.tree).as_posix() for p in plan.tree.rglob("*") if p.is_file())
        ops: list = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(plan.tree / f)) for f in files]
        if not created:
            old = set(api.list_repo_files(repo_id, repo_type="space")) - set(files) - {".gitattributes"}
            ops += [CommitOperationDelete(path_in_repo=f) for f in sorted(old)]
        info = api.create_commit(repo_id, operations=ops, repo_type="space",
                                 commit_message="Deploy with python -m deploy")
        log(f"uploaded {len(files)} files in one commit ({getattr(info, 'oid', '')[:12]})")
    except (HfHubHTTPError, ValueError, *net) as e:
        if isinstance(e, net):
            msg = f"Cannot reach the Hub ({_why(e)})."
        elif isinstance(e, HfHubHTTPError):
            msg = f"The Hub refused the upload ({_why(e)})."
        else:  # create_commit's check of README.md's front matter
            msg = f"The Hub refused the Space card (Space.md): {e}."
        if created:
            try:
                api.delete_repo(repo_id, repo_type="space")
                msg += f" The new Space {repo_id} was deleted again: nothing is left on the Hub."
            except Exception as e2:  # noqa: BLE001 - report whatever stopped the clean-up
                msg += (f" The new Space {repo_id} could not be deleted ({_why(e2)}): it exists but holds no "
                        f"app. Delete it at {url}/settings or run the same command again with --update.")
        else:
            msg += f" Nothing was committed: {repo_id} keeps its previous version."
        raise DeployError(msg) from e
    return url
