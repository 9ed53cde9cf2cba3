from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from queue import Queue

import httpx
import stripe

from devstack.localstripe import LocalStripe
from devstack.ports import free_port

API_KEY = ("sk_test_devstack", "")


def _webhook_receiver() -> tuple[HTTPServer, Queue[tuple[bytes, str]]]:
    received: Queue[tuple[bytes, str]] = Queue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_customers_webhooks_persistence_and_wipe(tmp_path: Path) -> None:
    stripe_server = LocalStripe(free_port(), tmp_path / "logs", tmp_path / "stripe.pickle")
    receiver, received = _webhook_receiver()
    stripe_server.start()
    try:
        webhook_url = f"http://127.0.0.1:{receiver.server_address[1]}/api/v1/webhooks/stripe"
        stripe_server.register_webhook(webhook_url, "whsec_devstack")
        created = httpx.post(f"{stripe_server.api_base}/v1/customers", data={"email": "a@cedar.test"}, auth=API_KEY)
        assert created.status_code == 200, created.text

        payload, signature = received.get(timeout=10)  # localstripe posts events after about a second
        event = stripe.Webhook.construct_event(payload, signature, "whsec_devstack")
        assert event["type"] == "customer.created"

        stripe_server.stop()
        stripe_server.start()
        customers = httpx.get(f"{stripe_server.api_base}/v1/customers", auth=API_KEY).json()["data"]
        assert [c["email"] for c in customers] == ["a@cedar.test"]

        stripe_server.wipe()
        assert httpx.get(f"{stripe_server.api_base}/v1/customers", auth=API_KEY).json()["data"] == []
    finally:
        stripe_server.stop()
        receiver.shutdown()


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def test_without_a_store_file_nothing_is_written(tmp_path: Path) -> None:
    shared_pickle = Path("/tmp/localstripe.pickle")  # where localstripe's own script would write
    before = _mtime(shared_pickle)
    with LocalStripe(free_port(), tmp_path / "logs") as stripe_server:
        httpx.post(f"{stripe_server.api_base}/v1/customers", data={"email": "b@cedar.test"}, auth=API_KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]
    assert _mtime(shared_pickle) == before
