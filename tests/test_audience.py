"""The subscriber list in SQLite: import, add, remove, list, count, export."""

from __future__ import annotations

import csv
import json
import sqlite3

from pipeline.store.database import MIGRATIONS


def test_import_reports_counts_and_keeps_every_valid_row(run, audience):
    db = sqlite3.connect(audience)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 12
    row = db.execute("SELECT name, fields FROM subscribers WHERE email = 'zhou.an@example.org'"
                     ).fetchone()
    assert row[0] == "周安" and json.loads(row[1]) == {"city": "杭州"}


def test_reimport_is_idempotent(run, audience):
    result = run("audience", "import", "subscribers.csv")
    assert result.stdout == ("added 0, updated 0, unchanged 12, kept unsubscribed 0, "
                             "skipped 0\n")


def test_invalid_rows_are_reported_with_their_line_and_skipped(run, project):
    (project / "list.csv").write_bytes(
        "\ufeffEmail,Name,Company\n"
        "ok@example.com,好,Acme\n"
        "not-an-address,坏,X\n"
        "\"multi\nline@example.com\",Bad,Y\n"
        "OK@Example.com,又好,Acme Ltd\n"
        "two@example.com,\"Eve\nBcc: x@evil.com\",Z\n"
        ",nobody,\n"
        "three@example.com,,\n".encode())
    result = run("audience", "import", "list.csv")
    assert result.exit_code == 0
    assert result.stdout == ("added 2, updated 0, unchanged 0, kept unsubscribed 0, "
                             "skipped 5 (2 invalid address, 1 duplicate row merged, "
                             "1 invalid name, 1 no address)\n")
    assert result.stderr.splitlines() == [
        "list.csv:3: warning: 'not-an-address' is not a valid email address; row skipped",
        "list.csv:4: warning: 'multi\\nline@example.com' is not a valid email address; row "
        "skipped",
        "list.csv:6: warning: OK@Example.com already appears on line 2; the later row wins",
        "list.csv:7: warning: the name contains a line break, which would break the email's "
        "headers; row skipped",
        "list.csv:9: warning: the email is empty; row skipped",
    ]
    listed = run("audience", "list", "--json")
    people = json.loads(listed.stdout)
    assert [(p["email"], p["name"], p["fields"]) for p in people] == [
        ("OK@Example.com", "又好", {"company": "Acme Ltd"}),  # merged case-insensitively
        ("three@example.com", "", {}),
    ]


def test_a_csv_without_an_email_column(run, project):
    (project / "list.csv").write_text("mail,name\na@b.co,A\n")
    result = run("audience", "import", "list.csv")
    assert result.exit_code == 1
    assert result.stderr == ("list.csv:1: the header has no 'email' column; the first line "
                             "must name the columns, like: email,name (found: mail, name; if "
                             "mail holds the addresses: --map email=mail)\n")


def test_add_remove_list_count_export(run, audience, project):
    assert run("audience", "add", "new@example.com", "--name", "新人").stdout == \
        "new@example.com: added\n"
    assert run("audience", "remove", "CHEN.MO@example.com").stdout == \
        "CHEN.MO@example.com: unsubscribed\n"
    assert run("audience", "remove", "chen.mo@example.com").stdout == \
        "chen.mo@example.com: was already unsubscribed\n"
    assert run("audience", "count").stdout == \
        "12 active, 1 unsubscribed, 0 suppressed, 13 in all\n"
    listed = run("audience", "list", "--status", "unsubscribed").stdout
    assert listed == "chen.mo@example.com\t陈默\tunsubscribed\n"
    # an unsubscribed reader stays unsubscribed when the CSV is imported again
    again = run("audience", "import", "subscribers.csv")
    assert "kept unsubscribed 1" in again.stdout
    assert run("audience", "count").stdout.startswith("12 active, 1 unsubscribed")
    exported = run("audience", "export", "out.csv")
    assert exported.stdout == "wrote 13 subscribers to out.csv\n"
    rows = list(csv.DictReader((project / "out.csv").open(encoding="utf-8")))
    assert rows[1] == {"email": "chen.mo@example.com", "name": "陈默", "status": "unsubscribed",
                       "tags": "", "consent_at": "", "consent_source": "", "consent_client": "",
                       "consent_agent": "", "confirmed_at": "", "city": "北京"}
    history = sqlite3.connect(audience).execute(
        "SELECT unsubscribed_at, unsubscribe_source FROM subscribers WHERE email_key = ?",
        ("chen.mo@example.com",)).fetchone()
    assert history == ("2023-12-06T08:00:00+00:00", "operator")


def test_add_rejects_a_bad_address_and_remove_an_unknown_one(run, project):
    bad = run("audience", "add", "nope")
    assert bad.exit_code == 1 and bad.stderr == "'nope' is not a valid email address\n"
    unknown = run("audience", "remove", "ghost@example.com")
    assert unknown.exit_code == 1
    assert unknown.stderr == ("'ghost@example.com' is not in the audience; check the address "
                              "(newsletter audience list)\n")
