"""Accounting speaks QuickBooks Online: OAuth2, the query language, paging, envelopes, Faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import requests

from unified_assets_tests.support.simulator_requests import (
    iso,
    qbo_all,
    qbo_query,
    qbo_token,
    qbo_window,
)
from unified_assets_tests.support.simulators import SIMULATOR_FROZEN_AT

WEEK = (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 8, tzinfo=UTC))


def fault_of(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"Fault", "time"}
    return body["Fault"]


def test_token_endpoint_issues_bearer_tokens(server):
    creds = server.credentials
    response = requests.post(
        server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": creds.qbo_refresh_token},
        auth=(creds.qbo_client_id, creds.qbo_client_secret),
        timeout=5,
    )
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "application/json"
    )
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert (
        body["refresh_token"] == creds.qbo_refresh_token and body["x_refresh_token_expires_in"] > 0
    )
    assert (
        qbo_query(server, body["access_token"], "select count(*) from Invoice").status_code == 200
    )


def test_token_endpoint_rejects_bad_clients_and_grants(server):
    creds = server.credentials
    form = {"grant_type": "refresh_token", "refresh_token": creds.qbo_refresh_token}
    wrong_client = requests.post(server.token_url, data=form, auth=("someone", "else"), timeout=5)
    assert wrong_client.status_code == 401 and wrong_client.json() == {"error": "invalid_client"}
    auth = (creds.qbo_client_id, creds.qbo_client_secret)
    stale = requests.post(
        server.token_url, data={**form, "refresh_token": "old"}, auth=auth, timeout=5
    )
    assert stale.status_code == 400 and stale.json() == {"error": "invalid_grant"}


def test_unknown_token_gets_the_authentication_fault(server):
    response = qbo_query(server, "not-a-token", "select * from Invoice")
    assert response.status_code == 401
    fault = fault_of(response)
    assert fault["type"] == "AUTHENTICATION"
    assert fault["Error"][0]["code"] == "3200"
    assert (
        fault["Error"][0]["Message"]
        == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    )


def test_another_realm_is_forbidden(server):
    token = qbo_token(server)
    url = f"{server.base_urls['accounting']}/v3/company/123/query"
    response = requests.get(
        url,
        params={"query": "select * from Invoice"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 403 and fault_of(response)["type"] == "SECURITY"


def test_query_envelope_and_invoice_fields(server):
    order = "ORDERBY Metadata.LastUpdatedTime MAXRESULTS 50"
    statement = f"select * from Invoice where {qbo_window(*WEEK)} {order}"
    response = qbo_query(server, qbo_token(server), statement)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(
        "application/json"
    )
    body = response.json()
    assert set(body) == {"QueryResponse", "time"}
    assert body["time"].endswith("-07:00")  # mid-April: Pacific daylight time
    result = body["QueryResponse"]
    assert result["startPosition"] == 1 and result["maxResults"] == len(result["Invoice"]) == 50
    invoice = result["Invoice"][0]
    for key in (
        "Id",
        "SyncToken",
        "DocNumber",
        "TxnDate",
        "DueDate",
        "CurrencyRef",
        "ExchangeRate",
        "CustomerRef",
        "Line",
        "TotalAmt",
        "Balance",
        "LinkedTxn",
        "MetaData",
    ):
        assert key in invoice, key
    assert isinstance(invoice["Id"], str) and isinstance(invoice["SyncToken"], str)
    assert set(invoice["CustomerRef"]) == {"value", "name"}
    item = invoice["Line"][0]
    assert item["DetailType"] == "SalesItemLineDetail"
    assert set(item["SalesItemLineDetail"]) >= {"ItemRef", "Qty", "UnitPrice"}
    assert isinstance(invoice["TotalAmt"], float | int)
    assert set(invoice["MetaData"]) == {"CreateTime", "LastUpdatedTime"}


def test_paging_to_the_end_returns_the_ground_truth_once(server, world):
    invoices = qbo_all(server, *WEEK, page=300)
    ids = [i["Id"] for i in invoices]
    assert len(ids) == len(set(ids)) > 1000
    stamps = [(pd.Timestamp(i["MetaData"]["LastUpdatedTime"]), int(i["Id"])) for i in invoices]
    assert stamps == sorted(stamps), "ORDERBY LastUpdatedTime, ties by Id"
    truth = world.ground_truth(
        "accounting", as_of=SIMULATOR_FROZEN_AT, updated_from=WEEK[0], updated_to=WEEK[1]
    )
    assert ids == truth["id"].tolist()
    assert invoices == truth["record"].tolist()


def test_count_matches_the_pages(server):
    token = qbo_token(server)
    body = qbo_query(
        server, token, f"select count(*) from Invoice where {qbo_window(*WEEK)}"
    ).json()
    assert body["QueryResponse"] == {"totalCount": len(qbo_all(server, *WEEK))}


def test_comparison_operators_bound_the_window(server):
    token = qbo_token(server)
    moment = pd.Timestamp(
        "2026-04-02T05:00:00Z"
    )  # the quarter-close batch: many invoices at this second

    def count(condition):
        return qbo_query(server, token, f"select count(*) from Invoice where {condition}").json()[
            "QueryResponse"
        ]["totalCount"]

    field = "Metadata.LastUpdatedTime"
    at_or_after, after = count(f"{field} >= '{iso(moment)}'"), count(f"{field} > '{iso(moment)}'")
    at = count(f"{field} >= '{iso(moment)}' and {field} <= '{iso(moment)}'")
    assert at > 1000 and at_or_after - after == at
    local = moment.tz_convert("America/Los_Angeles").isoformat()
    assert count(f"{field} >= '{local}'") == at_or_after, "offsets are honoured"


def test_past_the_end_the_response_is_empty(server):
    statement = (
        f"select * from Invoice where {qbo_window(*WEEK)} STARTPOSITION 100000 MAXRESULTS 10"
    )
    body = qbo_query(server, qbo_token(server), statement).json()
    assert body["QueryResponse"] == {}


def test_bad_queries_get_a_validation_fault(server):
    token = qbo_token(server)
    for statement in (
        "select * from Invoice MAXRESULTS 1001",
        "select * from Invoice STARTPOSITION 0",
        "select * from Invoice where Balance > '0'",
        "select * from Invoice where Metadata.LastUpdatedTime >= 'yesterday'",
        "select * from Customer",
        "delete from Invoice",
    ):
        response = qbo_query(server, token, statement)
        assert response.status_code == 400, statement
        fault = fault_of(response)
        assert fault["type"] == "ValidationFault" and fault["Error"][0]["code"] == "4000"


def test_keywords_are_case_insensitive_and_id_lookups_work(server, world):
    token = qbo_token(server)
    body = qbo_query(
        server, token, "SELECT * FROM invoice WHERE Id IN ('1', '2') orderby Id desc"
    ).json()
    assert [i["Id"] for i in body["QueryResponse"]["Invoice"]] == ["2", "1"]


def test_an_invoice_seen_later_has_a_higher_sync_token(fresh_world):
    from saas_simulator import SimulatorServer

    with SimulatorServer(fresh_world) as server:
        token = qbo_token(server)
        newest = "select * from Invoice ORDERBY Metadata.CreateTime DESC MAXRESULTS 1"
        first = qbo_query(server, token, newest).json()["QueryResponse"]["Invoice"][0]
        fresh_world.clock.advance(timedelta(days=120))
        again = f"select * from Invoice where Id = '{first['Id']}'"
        later = qbo_query(server, token, again).json()["QueryResponse"]["Invoice"][0]
    assert int(later["SyncToken"]) > int(first["SyncToken"])
    assert later["MetaData"]["LastUpdatedTime"] > first["MetaData"]["LastUpdatedTime"]
    assert later["MetaData"]["CreateTime"] == first["MetaData"]["CreateTime"]
