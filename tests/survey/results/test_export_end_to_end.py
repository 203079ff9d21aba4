"""From ingestion to the export: transactions are sampled, invited, answered on the web, and the
export's weights add up to the frame counts ingestion kept; the rates agree."""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa
from litestar.testing import TestClient

from questionnaires.loading import load_library
from survey.context import AppContext
from survey.ingestion.ingest import ingest_transactions
from survey.kernel.db import transaction
from survey.kernel.periods import parse_period
from survey.kernel.principal import CLI_PRINCIPAL
from survey.kernel.tokens import token_for
from survey.models import Invitation
from survey.outreach.invitations import create_invitations
from survey.registry.questionnaires import register
from survey.results.export import export_responses, frame_counts_csv, responses_csv
from survey.results.rates import response_rates
from tests.survey.builders import add_agency, add_plan, transaction_record

CSRF = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')


def test_ingested_sampled_invited_answered_exported(
    context: AppContext, client: TestClient
) -> None:
    add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)  # TAX-01 in person: rate 1; everything else 0.5
    with transaction(context.sessions) as session:
        register(session, CLI_PRINCIPAL, load_library()["core-transaction"])
    records = [transaction_record(n) for n in range(1, 13)] + [
        transaction_record(n, channel="online") for n in range(13, 53)
    ]
    result = ingest_transactions(context, "TAX", records)
    assert result.accepted == len(records) and result.rejected == 0
    create_invitations(
        context.sessions,
        secret_key=context.settings.secret_key,
        public_base_url=context.settings.public_base_url,
        now=context.clock(),
    )
    with context.read_sessions() as session:
        invitations = session.execute(sa.select(Invitation.id)).scalars().all()
    tokens = [token_for(context.settings.secret_key, int(i)) for i in invitations]
    assert len(tokens) >= 12

    answered = tokens[::2]
    for token in answered:
        page = client.get(f"/s/{token}")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        done = client.post(
            f"/s/{token}",
            data={"_csrf_token": csrf[1], "action": "submit", "q_overall": "4", "q_time": "3"},
            follow_redirects=False,
        )
        assert done.status_code == 303

    export = export_responses(context, date(2026, 3, 10), date(2026, 3, 10))
    rows = export.responses
    assert len(rows) == len(answered)
    assert set(rows["period"]) == {"1404-12"}
    in_person = "1404-12/v1/agency=TAX|service=TAX-01|channel=in_person"
    online = "1404-12/v1/agency=TAX|service=TAX-01|channel=online"
    strata = export.frame_counts[export.frame_counts["margin"] == "stratum"].set_index("stratum")
    assert strata.loc[in_person, "N"] == 12 and strata.loc[in_person, "n_sampled"] == 12
    assert strata.loc[online, "N"] == 40
    assert strata["n_sampled"].sum() == len(tokens)
    for stratum, group in rows.groupby("stratum"):
        assert abs(group["weight"].sum() - strata.loc[stratum, "N"]) < 1e-9
        assert (group["n_sampled_h"] == strata.loc[stratum, "n_sampled"]).all()
    assert set(rows.loc[rows["stratum"] == in_person, "base_weight"]) == {1.0}
    assert set(rows.loc[rows["stratum"] == online, "base_weight"]) == {2.0}

    text = responses_csv(export) + frame_counts_csv(export)
    for record in records:
        assert record["phone"] not in text and record["phone"][1:] not in text
    for token in tokens:
        assert token not in text

    with context.read_sessions() as session:
        overall = response_rates(session, parse_period("1404-12")).records()[0]
    assert overall["I"] == len(answered) and overall["total"] == len(tokens)
    assert abs(overall["RR1"] - len(answered) / len(tokens)) < 1e-12
