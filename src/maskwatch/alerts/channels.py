"""Delivery channels. Each ``send(message)`` either returns (delivered) or raises (retry later)."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from .config import MqttChannel, SmtpChannel, WebhookChannel

SIGNATURE_HEADER = "X-MaskWatch-Signature"


class DeliveryError(Exception):
    """Delivery failed; ``permanent`` when retrying cannot help (e.g. the receiver answers 4xx)."""

    def __init__(self, text: str, permanent: bool = False):
        super().__init__(text)
        self.permanent = permanent


def sign(body: bytes, secret: str) -> str:
    """The ``X-MaskWatch-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(sign(body, secret), header)


class WebhookSender:
    name = "webhook"

    def __init__(self, cfg: WebhookChannel):
        import httpx

        self.cfg = cfg
        self.client = httpx.Client(timeout=cfg.timeout_s)

    def send(self, message: dict[str, Any]) -> None:
        import httpx

        if message["kind"] != "alert":
            return
        body = json.dumps(message["payload"], separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.cfg.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.cfg.secret)
        try:
            response = self.client.post(self.cfg.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{exc.__class__.__name__}: {exc}") from None
        if response.status_code >= 400:
            permanent = response.status_code < 500 and response.status_code not in (408, 429)
            raise DeliveryError(f"HTTP {response.status_code}", permanent=permanent)

    def close(self) -> None:
        self.client.close()


class MqttSender:
    """Frigate-style topics: ``<prefix>/<camera>/events`` per alert, retained ``<prefix>/<camera>/counts``."""

    name = "mqtt"

    def __init__(self, cfg: MqttChannel):
        self.cfg = cfg
        self.client: Any = None
        self._connected = threading.Event()

    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt

        if self.client is not None and self._connected.is_set():
            return self.client
        self._drop()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id or "")
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        client.on_connect = lambda c, u, f, rc, p=None: self._connected.set() if not rc.is_failure else None
        client.on_disconnect = lambda *a: self._connected.clear()
        try:
            client.connect(self.cfg.host, self.cfg.port, keepalive=30)
        except OSError as exc:
            raise DeliveryError(f"cannot connect to {self.cfg.host}:{self.cfg.port}: {exc}") from None
        client.loop_start()
        self.client = client
        if not self._connected.wait(5.0):
            self._drop()
            raise DeliveryError(f"no CONNACK from {self.cfg.host}:{self.cfg.port}")
        return client

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self.client.disconnect()
                self.client.loop_stop()
            except Exception:  # noqa: BLE001 - tearing down a broken connection
                pass
        self.client = None
        self._connected.clear()

    def send(self, message: dict[str, Any]) -> None:
        client = self._connect()
        camera = _topic_part(message["camera"])
        kind = "events" if message["kind"] == "alert" else "counts"
        topic = f"{self.cfg.topic_prefix}/{camera}/{kind}"
        info = client.publish(topic, json.dumps(message["payload"], separators=(",", ":")), qos=self.cfg.qos,
                              retain=kind == "counts")
        try:
            info.wait_for_publish(timeout=5.0)
        except (RuntimeError, ValueError) as exc:
            self._drop()
            raise DeliveryError(f"publish to {topic}: {exc}") from None
        if not info.is_published():
            self._drop()
            raise DeliveryError(f"publish to {topic}: not acknowledged")

    def close(self) -> None:
        self._drop()


def _topic_part(name: str | None) -> str:
    return "".join("_" if ch in "/+#" else ch for ch in (name or "unknown"))


class SmtpSender:
    name = "smtp"

    def __init__(self, cfg: SmtpChannel):
        self.cfg = cfg

    def send(self, message: dict[str, Any]) -> None:
        if message["kind"] != "alert":
            return
        p = message["payload"]
        mail = EmailMessage()
        mail["From"] = self.cfg.from_
        mail["To"] = ", ".join(self.cfg.to)
        mail["Subject"] = f"{self.cfg.subject_prefix} {p['type'].replace('_', ' ')} on {p.get('camera') or p.get('source')}"
        lines = [f"{k}: {p.get(k)}" for k in ("type", "camera", "time", "track_id", "state_before", "state_after",
                                              "confidence", "alert_id", "snapshot_url") if p.get(k) is not None]
        mail.set_content("\n".join(lines) + "\n")
        snap = message.get("snapshot_path")
        if snap and Path(snap).is_file():
            data = Path(snap).read_bytes()
            subtype = "png" if snap.lower().endswith(".png") else "jpeg"
            mail.add_attachment(data, maintype="image", subtype=subtype, filename=Path(snap).name)
        try:
            with smtplib.SMTP(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_s) as smtp:
                if self.cfg.starttls:
                    smtp.starttls()
                if self.cfg.username:
                    smtp.login(self.cfg.username, self.cfg.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipients refused: {exc}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{exc.__class__.__name__}: {exc}") from None

    def close(self) -> None:
        pass
