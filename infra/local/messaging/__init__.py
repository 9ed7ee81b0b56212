"""The local cloud's messaging channels: SNS SMS and push, AWS End User Messaging SMS and voice
(`pinpoint-sms-voice-v2`) and Social (`socialmessaging`, WhatsApp), which moto 5.2.5 lacks.

`install()` (called in the local cloud's `_start_moto`) serves the emulated services from moto's
own server; `client.LocalMessaging` reads what was sent and simulates what phones, devices and
providers do. See each module's docstring for what is emulated and the deliberate differences.
"""

from __future__ import annotations


def install() -> None:
    """Serve End User Messaging SMS/voice and Social from moto's server in this process (idempotent)."""
    from infra.local.messaging import server

    server.install()
