"""SMS dispatch throughput on SQLite (or PostgreSQL): invitations created and messages sent per
second through the `file` gateway, with the full exactly-once protocol (claim committed before
each send, one transaction per mark).

    python bench/dispatch.py [--units 5000] [--database-url URL]

Seeds `--units` pending sampled units (sms_link, Persian, encrypted phones) in a temporary
SQLite database (or a fresh PostgreSQL schema), then times `create_invitations` and `send_due`
separately with an unlimited rate, checks the file holds each message once, and prints the
figures. The production send rate is limited by the provider, not by this path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def seed(context, units: int) -> None:  # type: ignore[no-untyped-def]
    from questionnaires.loading import load_library
    from survey.kernel.db import transaction
    from survey.models import (
        Agency,
        QuestionnaireVersion,
        SampledUnit,
        SamplingPlan,
        Service,
        ServiceTransaction,
    )

    now = context.clock()
    q = load_library()["core-transaction"]
    with transaction(context.sessions) as session:
        agency = Agency(code="BENCH", name_fa="سازمان ثبت احوال", name_en="Civil Registry")
        session.add(agency)
        session.flush()
        service = Service(code="B-01", agency_id=agency.id, name_fa="خدمت", name_en="Service")
        plan = SamplingPlan(
            version=1,
            name="bench",
            starts=date(2026, 1, 1),
            seed="00" * 32,
            strata=["agency"],
            default_rate=1.0,
            rates=[],
            contact_rule_days=90,
            quiet_hours=None,
            reminder_after_hours=48,
            expires_after_days=7,
            questionnaires=[{"service": "B-01", "questionnaire": q.id, "mode": "sms_link"}],
            source="bench",
        )
        session.add_all([service, plan])
        session.add(
            QuestionnaireVersion(
                qid=q.id,
                version=q.version,
                title_fa=q.title.fa,
                title_en=q.title.en,
                content=q.to_dict(),
                content_hash=q.content_hash(),
            )
        )
        session.flush()
        tx_rows = [
            {
                "agency_id": agency.id,
                "external_id": f"b{i}",
                "service_id": service.id,
                "channel": "in_person",
                "completed_at": now,
                "received_at": now,
                "language": "fa",
                "plan_id": plan.id,
                "stratum": "BENCH",
                "outcome": "sampled",
            }
            for i in range(units)
        ]
        session.execute(sa.insert(ServiceTransaction), tx_rows)
        tx_ids = list(
            session.scalars(sa.select(ServiceTransaction.id).order_by(ServiceTransaction.id))
        )
        vault = context.vault
        unit_rows = []
        for i, tx_id in enumerate(tx_ids):
            phone = f"+98912{i:07d}"
            unit_rows.append(
                {
                    "transaction_id": tx_id,
                    "plan_id": plan.id,
                    "agency_id": agency.id,
                    "service_id": service.id,
                    "channel": "in_person",
                    "province_code": "",
                    "stratum": "BENCH",
                    "day": now.date(),
                    "inclusion_probability": 1.0,
                    "phone_ciphertext": vault.encrypt(phone),
                    "phone_key_id": vault.key_id,
                    "phone_hash": vault.phone_hash(phone),
                    "language": "fa",
                    "questionnaire_qid": q.id,
                    "mode": "sms_link",
                    "status": "pending",
                    "created_at": now,
                }
            )
        session.execute(sa.insert(SampledUnit), unit_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument(
        "--database-url", default="", help="postgresql://... (default: temp SQLite)"
    )
    args = parser.parse_args()

    from survey.config import Settings
    from survey.context import AppContext
    from survey.kernel import db
    from survey.outreach.dispatcher import Dispatcher, DispatchOptions
    from survey.outreach.gateways.file import FileGateway

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        schema = None
        if args.database_url:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(db.normalise_url(url), poolclass=sa.pool.NullPool)
            with admin.begin() as connection:
                connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
            url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        settings = Settings(
            database_url=url,
            secret_key=bytes(range(32)),
            env="test",
            public_base_url="https://survey.example.ir",
            var_dir=Path(tmp) / "var",
        )
        try:
            db.upgrade(settings)
            context = AppContext.build(
                settings, clock=lambda: datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
            )
            started = time.perf_counter()
            seed(context, args.units)
            print(f"seeded {args.units} sampled units in {time.perf_counter() - started:.1f} s")
            out = Path(tmp) / "sms.jsonl"
            dispatcher = Dispatcher(
                context,
                FileGateway(out),
                options=DispatchOptions(
                    rate_per_second=1e9, batch_size=100, max_messages_per_pass=10**9
                ),
            )
            started, cpu = time.perf_counter(), time.process_time()
            invited = dispatcher.create_invitations()
            create_s, create_cpu = time.perf_counter() - started, time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            report = dispatcher.send_due()
            send_s, send_cpu = time.perf_counter() - started, time.process_time() - cpu
            lines = out.read_text("utf-8").splitlines()
            assert invited == args.units and report.sent == args.units == len(lines), (
                invited,
                report,
            )
            backend = "PostgreSQL" if args.database_url else "SQLite"
            # CPU of this process (dispatcher and SQLite; for PostgreSQL the server's is not
            # counted): what one fully used core sustains, whatever else loads the machine.
            print(
                f"{backend}: invitations created {invited / create_s:,.0f}/s ({create_s:.1f} s); "
                f"CPU {create_cpu / invited * 1e6:.0f} us each = "
                f"{invited / create_cpu:,.0f}/s per fully used core"
            )
            print(
                f"{backend}: messages sent {report.sent / send_s:,.0f}/s ({send_s:.1f} s), "
                f"each exactly once; CPU {send_cpu / report.sent * 1e6:.0f} us each = "
                f"{report.sent / send_cpu:,.0f}/s per fully used core"
            )
            context.close()
        finally:
            if schema is not None:
                with admin.begin() as connection:
                    connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                admin.dispose()


if __name__ == "__main__":
    main()
