"""ICE / TURN configuration for the WebRTC component, from environment variables.

Browsers behind NAT (and every Hugging Face Space) need a TURN relay; on
localhost no ICE server is needed at all.  In order of precedence:

1. ``TURN_URLS`` (comma separated ``turn:``/``turns:``/``stun:`` URLs) with
   ``TURN_USERNAME`` and ``TURN_CREDENTIAL``: your own TURN server.
2. ``HF_TOKEN`` or ``CLOUDFLARE_TURN_KEY_ID`` + ``CLOUDFLARE_TURN_KEY_API_TOKEN``:
   short-lived Cloudflare TURN credentials through fastrtc's
   ``get_cloudflare_turn_credentials`` (fetched for each browser connection).
3. Nothing set: no ICE servers (local use).

``TURN_PROVIDER=none`` disables 2 even when ``HF_TOKEN`` is set (the token may
be there only for private models).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)


def _static_from_env(env) -> dict | None:
    urls = [u.strip() for u in env.get("TURN_URLS", "").split(",") if u.strip()]
    if not urls:
        return None
    server: dict[str, Any] = {"urls": urls}
    if env.get("TURN_USERNAME"):
        server["username"] = env["TURN_USERNAME"]
    if env.get("TURN_CREDENTIAL"):
        server["credential"] = env["TURN_CREDENTIAL"]
    return {"iceServers": [server]}


def _cloudflare_available(env) -> bool:
    if env.get("TURN_PROVIDER", "").lower() == "none":
        return False
    return bool(env.get("HF_TOKEN") or (env.get("CLOUDFLARE_TURN_KEY_ID") and env.get("CLOUDFLARE_TURN_KEY_API_TOKEN")))


def _cloudflare_client_config(ttl: int) -> Callable:
    async def config() -> dict:
        # A plain (async) function: fastrtc calls it for every new browser connection,
        # so the short-lived credentials are always fresh.
        from fastrtc import get_cloudflare_turn_credentials_async

        return await get_cloudflare_turn_credentials_async(ttl=ttl)

    return config


def rtc_configuration(env: Mapping[str, str]) -> tuple[dict | Callable | None, dict | None, str]:
    """(client rtc_configuration, server_rtc_configuration, description) for ``WebRTC``, from the TURN
    variables ``env`` (``Settings.rtc_env``)."""
    static = _static_from_env(env)
    if static is not None:
        return static, static, f"TURN from TURN_URLS ({len(static['iceServers'][0]['urls'])} URL(s))"
    if _cloudflare_available(env):
        server = None
        try:
            from fastrtc import get_cloudflare_turn_credentials

            server = get_cloudflare_turn_credentials(ttl=int(env.get("TURN_SERVER_TTL", "360000")))
            if not isinstance(server, dict) or "iceServers" not in server:
                raise ValueError(f"unexpected answer: {str(server)[:200]}")
        except Exception as exc:  # no network, bad token: the browser side may still work
            log.warning("could not get server-side TURN credentials: %s", exc)
            server = None
        return _cloudflare_client_config(int(env.get("TURN_TTL", "86400"))), server, "Cloudflare TURN via fastrtc (HF_TOKEN / CLOUDFLARE_TURN_*)"
    return None, None, "no TURN configured (local use)"
