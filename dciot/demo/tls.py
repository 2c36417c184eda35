"""`dciot demo --tls`: the whole district over TLS on a locked-down broker.

A CA and certificates are made in the run folder (`cloud_broker/security/pki.py`); every client
authenticates with its certificate (CN = its account): one gateway account per edge agent, the
ingest, and the demo's alarm view as a read-only alarm reader. The broker gets an ACL file from
those accounts (deny by default) and a TLS listener that requires a certificate; the plain
listener accepts nobody (no password file, anonymous off).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloud_broker.security.broker_files import Account, Role, gateway_account, write_broker_files
from cloud_broker.security.pki import Issued, init_ca, issue_certificate
from dciot.runtime import MosquittoServer, TlsListener

INGEST = "ingest"
VIEWER = "demo-viewer"


@dataclass(frozen=True)
class DemoTls:
    ca: Issued
    clients: dict[str, Issued]

    def client_tls(self, name: str) -> dict[str, str]:
        """The `tls:` section of an edge config (and the same files for the cloud)."""
        issued = self.clients[name]
        return {"cafile": str(self.ca.certfile), "certfile": str(issued.certfile),
                "keyfile": str(issued.keyfile)}


def prepare(run_dir: Path, gateways: list[str], port: int) -> tuple[DemoTls, MosquittoServer]:
    """Certificates for every client and a locked-down broker with a TLS listener on `port`."""
    pki = run_dir / "pki"
    ca = init_ca(pki)
    server = issue_certificate(pki, "broker", server=True)
    clients = {name: issue_certificate(pki, name) for name in [*gateways, INGEST, VIEWER]}
    accounts = [gateway_account(gw, None) for gw in gateways]
    accounts += [Account(INGEST, None, Role.INGEST), Account(VIEWER, None, Role.ALARM_READER)]
    _password_file, acl_file = write_broker_files(accounts, run_dir / "broker")
    broker = MosquittoServer(run_dir / "mosquitto", acl_file=acl_file,
                             tls=TlsListener(ca.certfile, server.certfile, server.keyfile,
                                             port=port))
    return DemoTls(ca, clients), broker
