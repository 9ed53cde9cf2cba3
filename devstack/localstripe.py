"""localstripe, a fake Stripe API, as a component of the local stack.

localstripe's own `localstripe` script pickles its whole store to the fixed path /tmp/localstripe.pickle
after every write and reloads it at start, so every instance on a machine (a test session, `./cedar run`)
would share and overwrite one file. We run it through `python -m devstack.localstripe` instead, which
points that persistence at a file of our choosing (`store_file`; None keeps everything in memory) and binds
only the given host. Registered webhooks are never persisted by localstripe: register them after each start.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
from pathlib import Path

import httpx

from devstack.processes import ManagedProcess, Service


class LocalStripe(Service):
    """localstripe on host:port. With `store_file`, Stripe objects survive a restart of the process."""

    def __init__(self, port: int, log_dir: Path, store_file: Path | None = None, *, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        args = [sys.executable, "-m", "devstack.localstripe", "--host", host, "--port", str(port)]
        if store_file is not None:
            args += ["--store", str(Path(store_file).absolute())]
        self.process = ManagedProcess("localstripe", args, Path(log_dir))

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.process.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.process.wait_ready(self.is_ready, timeout=timeout)

    def is_ready(self) -> bool:
        # Any HTTP answer will do: 401 without an API key proves the app is serving.
        httpx.get(f"{self.api_base}/v1/customers", timeout=1)
        return True

    def register_webhook(self, url: str, secret: str, webhook_id: str = "cedar") -> None:
        """Have localstripe sign events with `secret` and POST them to `url` (about a second after each)."""
        response = httpx.post(
            f"{self.api_base}/_config/webhooks/{webhook_id}", data={"url": url, "secret": secret}, timeout=10
        )
        response.raise_for_status()

    def wipe(self) -> None:
        """Delete every Stripe object (webhook registrations stay)."""
        httpx.delete(f"{self.api_base}/_config/data", timeout=10).raise_for_status()


def _persist_to(store_file: Path | None) -> None:
    """Replace localstripe's fixed-path pickling with `store_file` (or with nothing)."""
    from localstripe.resources import Store

    def load(self: Store) -> None:
        if store_file is None or not store_file.exists():
            return
        try:
            with open(store_file, "rb") as handle:
                saved = pickle.load(handle)  # noqa: S301 (the store our own localstripe wrote in the stack's folder)
        except Exception as error:  # a file cut short by a kill: keep it aside, start empty
            logging.getLogger(__name__).warning("unreadable %s (%s); starting empty", store_file, error)
            os.replace(store_file, store_file.with_suffix(".corrupt"))
            return
        self.clear()
        self.update(saved)

    def dump(self: Store) -> None:
        if store_file is None:
            return
        partial = store_file.with_suffix(".tmp")
        with open(partial, "wb") as handle:
            pickle.dump(dict(self), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, store_file)  # atomic: a kill mid-write leaves the previous state

    Store.try_load_from_disk = load  # type: ignore[method-assign]
    Store.dump_to_disk = dump  # type: ignore[method-assign]


def _one_off_invoices() -> None:
    """localstripe bills a customer's first subscription on any invoice created without one; Stripe invoices only
    the pending invoice items then (one-off charges). Make localstripe do as Stripe does, keeping the metadata."""
    from localstripe.resources import Invoice, InvoiceItem

    original = Invoice._api_create

    def create(
        cls: type[Invoice], customer: str | None = None, subscription: str | None = None, **kwargs: object
    ) -> Invoice:
        if subscription is None and customer is not None:
            # Items bound to a subscription (tuition adjustments) wait for that subscription's invoice, as in Stripe.
            pending = [
                ii
                for ii in InvoiceItem._api_list_all(None, customer=customer, limit=99)._list
                if ii.invoice is None and getattr(ii, "subscription", None) is None
            ]
            if pending:
                return cls(customer=customer, metadata=kwargs.get("metadata"), description=kwargs.get("description"))
        return original(customer=customer, subscription=subscription, **kwargs)  # type: ignore[no-any-return]

    Invoice._api_create = classmethod(create)  # type: ignore[assignment,method-assign]


def _draft_invoices() -> None:
    """Two things Stripe does with a subscription's draft invoice that localstripe does not: keep the ``metadata``
    given on create (a development renewal dates the period it bills there, localstripe having no clock), and put
    an invoice item created with ``invoice=<draft>`` on that invoice (Cedar's lesson-period adjustment); an item
    for an invoice that is no longer a draft is refused, as Stripe refuses it."""
    from localstripe.errors import UserError
    from localstripe.resources import Invoice, InvoiceItem, InvoiceLineItem

    creating: list[dict[str, object]] = []
    original_init = Invoice.__init__

    def init(self: Invoice, *args: object, metadata: dict[str, object] | None = None, **kwargs: object) -> None:
        original_init(self, *args, metadata=metadata or (creating[-1] if creating else None), **kwargs)

    create_invoice = Invoice._api_create

    def create(cls: type[Invoice], metadata: dict[str, object] | None = None, **kwargs: object) -> Invoice:
        creating.append(metadata or {})
        try:
            return create_invoice.__func__(cls, metadata=metadata, **kwargs)  # type: ignore[attr-defined,no-any-return]
        finally:
            creating.pop()

    create_item = InvoiceItem._api_create

    def create_item_on(cls: type[InvoiceItem], invoice: str | None = None, **kwargs: object) -> InvoiceItem:
        draft = Invoice._api_retrieve(invoice) if invoice is not None else None
        if draft is not None and draft.status != "draft":
            raise UserError(400, "Invoice items can only be added to draft invoices")
        item = create_item.__func__(cls, invoice=invoice, **kwargs)  # type: ignore[attr-defined]
        if draft is not None:
            draft.lines._list.append(InvoiceLineItem(item))
        return item  # type: ignore[no-any-return]

    Invoice.__init__ = init  # type: ignore[method-assign]
    Invoice._api_create = classmethod(create)  # type: ignore[assignment,method-assign]
    InvoiceItem._api_create = classmethod(create_item_on)  # type: ignore[assignment,method-assign]


def _subscription_updates() -> None:
    """Stripe takes ``proration_behavior`` on a subscription update (Cedar sends ``none`` with a trial or
    ``cancel_at``); localstripe refuses the parameter. Accept Stripe's values and keep the last one on the
    subscription (localstripe's record only: Stripe does not return it), so tests can see what was asked."""
    from localstripe.errors import UserError
    from localstripe.resources import Subscription

    original = Subscription._update

    def update(self: Subscription, *args: object, proration_behavior: str | None = None, **kwargs: object) -> None:
        if proration_behavior is not None and proration_behavior not in ("create_prorations", "none", "always_invoice"):
            raise UserError(400, "Bad request")
        original(self, *args, **kwargs)
        if proration_behavior is not None:
            self.proration_behavior = proration_behavior

    Subscription._update = update  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.localstripe")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--store", type=Path, default=None, help="pickle file keeping Stripe objects")
    args = parser.parse_args(argv)
    _persist_to(args.store)
    _one_off_invoices()
    _draft_invoices()
    _subscription_updates()

    from aiohttp import web
    from localstripe.resources import store
    from localstripe.server import app

    store.try_load_from_disk()
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.INFO)
    access_log.addHandler(logging.StreamHandler())
    web.run_app(app, host=args.host, port=args.port, access_log=access_log, print=None)


if __name__ == "__main__":
    main()
