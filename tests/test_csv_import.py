"""`audience import` you can trust (issue 13): a broken file is refused whole with the
line of every problem, the encoding is found (and said), exports of other services are
read as such, and a reader who left is never imported as active."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc

import pytest

MAILCHIMP_SYSTEM = ("MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,"
                    "LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION")
MAILCHIMP_TIMES = ",2,2018-02-12 10:54:27,,2018-02-12 10:54:27,,,,,,,,"  # its 12 columns


def database(project):
    return project / ".newsletter" / "newsletter.db"


def snapshot(project) -> tuple[list[tuple], list[tuple]]:
    """Every subscriber and suppression, to show that a refused file changed nothing."""
    if not database(project).exists():
        return [], []
    db = sqlite3.connect(database(project))
    try:
        return (db.execute("SELECT * FROM subscribers ORDER BY id").fetchall(),
                db.execute("SELECT * FROM suppressions ORDER BY email_key").fetchall())
    finally:
        db.close()


def people(run, status: str = "all") -> dict[str, tuple]:
    listed = json.loads(run("audience", "list", "--status", status, "--json").stdout)
    return {p["email"]: (p["name"], p["status"], p["suppressed"], p["fields"]) for p in listed}


def refused(run, project, *args: str) -> str:
    """Import a file that must be refused: exit 1, the database as it was; its stderr."""
    before = snapshot(project)
    result = run("audience", "import", *args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert snapshot(project) == before
    return result.stderr


# --- a file's shape: refused whole, every problem with its line --------------------------


def test_a_stray_quote_that_swallows_1000_rows_is_named_and_nothing_is_imported(
        run, audience, project):
    rows = ["email,name,city", "new.one@example.com,New One,Xi'an",
            'ada@example.com,"Ada,London']
    rows += [f"reader{i}@example.com,Reader {i},Shanghai" for i in range(1000)]
    (project / "subscribers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert refused(run, project, "subscribers.csv") == (
        'subscribers.csv:3: an unclosed quote (") starts here and swallows the next 1000 '
        "lines; close it or remove it\n")
    assert len(snapshot(project)[0]) == 12  # the sample audience, and no one else


def test_a_stray_quote_past_the_cell_limit_is_still_a_stray_quote(run, project):
    rows = ["email,name", "a@example.com,A", 'b@example.com,"B']
    rows += [f"reader{i}@example.com,Reader {i}" for i in range(5000)]  # > 64 KB of cell
    rows += ['c@example.com,"C" Jr', "d@example.com,D"]
    (project / "list.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert refused(run, project, "list.csv").splitlines() == [
        'list.csv:3: an unclosed quote (") starts here and swallows the next 5001 lines; '
        "close it or remove it",
        'list.csv:5004: a quote (") ends a quoted cell but more text follows it; put the '
        'whole cell in quotes and double each quote inside it, like "Ada ""the Countess"" '
        'Lovelace"',
    ]


def test_every_broken_row_is_reported_at_once(run, audience, project):
    (project / "list.csv").write_text(
        "email,name,city\n"
        'a@example.com,"Ada,London\n'       # 2: a stray quote, closed by line 4's quote
        "b@example.com,Bob,Paris\n"
        'c@example.com,"Carl",Rome\n'
        "d@example.com,Dee,Oslo\n"
        'e@example.com,"Eve" Smith,Oslo\n'  # 6: text after a closing quote
        "f@example.com,Fay\n"               # 7: a cell short
        "g@example.com,Zhang, Gu,Beijing\n"  # 8: a comma that needed quotes
        'h@example.com,"Hal\n', encoding="utf-8")  # 9: a quote open at the end
    assert refused(run, project, "list.csv").splitlines() == [
        'list.csv:2: an unclosed quote (") starts here and swallows the next 2 lines; close '
        "it or remove it",
        'list.csv:6: a quote (") ends a quoted cell but more text follows it; put the whole '
        'cell in quotes and double each quote inside it, like "Ada ""the Countess"" '
        'Lovelace"',
        "list.csv:7: 2 cells, but the header names 3 columns; add the missing cells (empty "
        "ones are fine, like a,,c)",
        "list.csv:8: 4 cells, but the header names 3 columns; a cell with a comma in it needs "
        'quotes, like "Zhang, Ada"',
        'list.csv:9: an unclosed quote (") starts here and runs to the end of the file; close '
        "it or remove it",
    ]


def test_a_cell_over_lines_is_a_cell_not_a_stray_quote(run, project):
    (project / "list.csv").write_text(
        'email,name,address\r\nada@example.com,Ada,"1 Main St\r\nLondon"\r\n'
        'bob@example.com,Bob,""\r\n', encoding="utf-8")
    result = run("audience", "import", "list.csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "added 2, updated 0, unchanged 0, kept unsubscribed 0, skipped 0\n"
    assert people(run)["ada@example.com"][3] == {"address": "1 Main St\r\nLondon"}


def test_a_file_that_stops_after_20_problems(run, project):
    (project / "list.csv").write_text("email,name\n" + "x@example.com,A,B\n" * 30)
    lines = refused(run, project, "list.csv").splitlines()
    assert len(lines) == 21
    assert lines[-1] == "list.csv:21: stopped after 20 problems; fix these and import again"


def test_a_50_mb_line_is_refused_without_holding_it(run, project):
    (project / "list.csv").write_text("email,name\na@example.com," + "x" * (50 << 20) + "\n"
                                      "b@example.com,B\n", encoding="utf-8")
    tracemalloc.start()
    try:
        stderr = refused(run, project, "list.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stderr == "list.csv:2: a cell longer than 64 KB; is this a CSV file?\n"
    assert peak < 16 << 20


def test_a_long_cell_on_a_short_line(run, project):
    (project / "list.csv").write_text(f"email,name\na@example.com,{'x' * 70000}\n")
    assert refused(run, project, "list.csv") == (
        "list.csv:2: a cell longer than 64 KB; is this a CSV file?\n")


@pytest.mark.parametrize(("content", "message"), [
    (b"PK\x03\x04\x14\x00\x06\x00", "list.csv: this is a ZIP archive (an Excel .xlsx "
     'workbook?), not a CSV file; save it as CSV (in Excel: File > Save As > "CSV UTF-8")'),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "list.csv: this is an Excel .xls workbook, not a "
     'CSV file; save it as CSV (in Excel: File > Save As > "CSV UTF-8")'),
    (b"email,name\na@example.com,A\n\x89PNG\x00\x00\x00\rIHDR", "list.csv:3: this line has "
     "a NUL character, which text never has; is this a CSV file? If it is a spreadsheet, "
     'save it as CSV (in Excel: File > Save As > "CSV UTF-8")'),
    (b"", "list.csv:1: the file is empty; the first line must name the columns, like: "
     "email,name"),
])
def test_what_is_not_a_csv_file(run, audience, project, content, message):
    (project / "list.csv").write_bytes(content)
    assert refused(run, project, "list.csv") == message + "\n"


# --- the header ------------------------------------------------------------------------


def test_header_problems_are_named(run, audience, project):
    (project / "list.csv").write_text("Email,name,city,EMAIL,name\na@example.com,A,X,,B\n")
    assert refused(run, project, "list.csv").splitlines() == [
        'list.csv:1: the column "Email" appears twice (columns 1 and 4); rename or remove one',
        'list.csv:1: the column "name" appears twice (columns 2 and 5); rename or remove one',
    ]
    (project / "list.csv").write_text("email,name,,\na@example.com,A,,\nb@example.com,B,x,\n")
    assert refused(run, project, "list.csv") == (
        "list.csv:1: column 3 has no name, but line 3 has a value in it; name the column or "
        "remove the value\n")
    (project / "list.csv").write_text("E-Mail Adresse,Name\na@example.com,A\n")
    assert refused(run, project, "list.csv") == (
        "list.csv:1: the header has no 'email' column; the first line must name the columns, "
        "like: email,name (found: E-Mail Adresse, Name; if E-Mail Adresse holds the "
        "addresses: --map 'email=E-Mail Adresse')\n")


def test_empty_trailing_columns_are_no_problem(run, project):
    (project / "list.csv").write_text("email,name,,\na@example.com,A,,\n")
    assert run("audience", "import", "list.csv").stdout.startswith("added 1,")


def test_map_names_the_email_and_name_columns(run, project):
    (project / "list.csv").write_text("E-Mail Adresse,Vollständiger Name,Stadt\n"
                                      "anna@example.de,Anna Schmidt,Berlin\n", encoding="utf-8")
    result = run("audience", "import", "list.csv", "--map",
                 "email=e-mail adresse,name=VOLLSTÄNDIGER NAME")
    assert result.exit_code == 0, result.output
    assert result.stdout == "added 1, updated 0, unchanged 0, kept unsubscribed 0, skipped 0\n"
    assert people(run) == {"anna@example.de": ("Anna Schmidt", "active", None,
                                               {"stadt": "Berlin"})}
    assert refused(run, project, "list.csv", "--map", "email=Mail,name=Name").splitlines() == [
        'list.csv:1: --map email=Mail: there is no column "Mail"; the columns are: E-Mail '
        "Adresse, Vollständiger Name, Stadt",
        'list.csv:1: --map name=Name: there is no column "Name"; the columns are: E-Mail '
        "Adresse, Vollständiger Name, Stadt",
    ]


@pytest.mark.parametrize(("option", "message"), [
    (["--map", "email"], "Error: Invalid value for '--map': 'email' is not KEY=COLUMN; write "
     "it like email=E-mail"),
    (["--map", "city=Stadt"], "Error: Invalid value for '--map': 'city' cannot be mapped; map "
     "email or name, like email=E-mail,name=Full name"),
    (["--encoding", "klingon"], "Error: Invalid value for '--encoding': unknown encoding "
     "'klingon'; give one Python knows, like utf-8, utf-16, gb18030, big5, shift_jis or "
     "cp1252"),
    (["--encoding", "base64"], "Error: Invalid value for '--encoding': unknown encoding "
     "'base64'; give one Python knows, like utf-8, utf-16, gb18030, big5, shift_jis or "
     "cp1252"),
])
def test_options_that_make_no_sense_are_usage_errors(run, project, option, message):
    result = run("audience", "import", "subscribers.csv", *option)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == message


# --- encodings -------------------------------------------------------------------------

CHINESE = "email,name,city\nzhou.an@example.org,周安,杭州\nli.heng@example.com,李恒,成都\n"


@pytest.mark.parametrize(("encoded", "read_as"), [
    (CHINESE.encode("utf-8"), ""),
    (b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), ""),
    (CHINESE.encode("utf-16"), "; read as UTF-16"),  # with its BOM, in this machine's order
    (b"\xfe\xff" + CHINESE.encode("utf-16-be"), "; read as UTF-16"),
    (CHINESE.encode("utf-16-le"), "; read as UTF-16"),  # no BOM
    (CHINESE.encode("utf-32"), "; read as UTF-32"),
    (CHINESE.encode("gb18030"), "; read as GB18030"),  # Excel in Chinese: GBK
    (CHINESE.replace(",", "\t").encode("utf-16"), "; read as UTF-16, tab-separated"),  # Excel's
    ("sep=;\r\n" + CHINESE.replace(",", ";").replace("\n", "\r\n"), "; read as "
     "semicolon-separated"),
])
def test_the_encoding_is_detected_and_said(run, project, encoded, read_as):
    path = project / "list.csv"
    path.write_bytes(encoded) if isinstance(encoded, bytes) else path.write_text(encoded)
    result = run("audience", "import", "list.csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("added 2, updated 0, unchanged 0, kept unsubscribed 0, "
                             f"skipped 0{read_as}\n")
    assert people(run) == {"zhou.an@example.org": ("周安", "active", None, {"city": "杭州"}),
                           "li.heng@example.com": ("李恒", "active", None, {"city": "成都"})}


def test_a_file_neither_utf8_nor_gb18030_names_its_line_and_encoding_reads_it(run, project):
    (project / "list.csv").write_bytes("email,name\nada@example.com,Ada\n"
                                       "jose@example.com,José,\n".encode("cp1252"))
    assert refused(run, project, "list.csv") == (
        "list.csv:3: this line is neither UTF-8 nor GB18030 (the encodings read without "
        '--encoding); save it as CSV (in Excel: File > Save As > "CSV UTF-8"), or name its '
        "encoding, like --encoding cp1252\n")
    (project / "list.csv").write_bytes("email,name\njose@example.com,José\n".encode("cp1252"))
    result = run("audience", "import", "list.csv", "--encoding", "cp1252")
    assert result.stdout == ("added 1, updated 0, unchanged 0, kept unsubscribed 0, "
                             "skipped 0; read as cp1252\n")
    assert people(run)["jose@example.com"][0] == "José"
    (project / "list.csv").write_bytes(CHINESE.encode("gb18030"))
    assert refused(run, project, "list.csv", "--encoding", "utf-8") == (
        "list.csv:2: this line is not valid utf-8; check --encoding, or leave it out to have "
        "the encoding detected\n")


# --- exports of other services ---------------------------------------------------------


def test_a_mailchimp_export_never_makes_a_reader_who_left_active(run, audience, project):
    header = "Email Address,First Name,Last Name,Company," + MAILCHIMP_SYSTEM
    (project / "subscribed.csv").write_text(
        f"{header},LAST_CHANGED,LEID,EUID,NOTES,TAGS\n"
        f"grace@example.com, Grace , Hopper ,Navy{MAILCHIMP_TIMES},,,,,\"\"\"Editors\"\"\"\n"
        f"an.zhou@example.com,安,周,{MAILCHIMP_TIMES},,,,,\n", encoding="utf-8")
    (project / "unsubscribed.csv").write_text(
        f"{header},UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,"
        "UNSUB_REASON_OTHER,LEID,EUID,NOTES,TAGS\n"
        f"left@example.com,Lee,Ft,{MAILCHIMP_TIMES},2023-06-06 12:56:15,,,,,,,,\n"
        f"lin.xiaoyu@example.com,,,{MAILCHIMP_TIMES},2023-06-06 12:56:15,,,,,,,,\n",
        encoding="utf-8")
    (project / "cleaned.csv").write_text(
        f"{header},CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID,LEID,EUID,NOTES,TAGS\n"
        f"bounced@example.com,Bo,,{MAILCHIMP_TIMES},2020-03-23 17:30:05,,,,,,\n",
        encoding="utf-8")
    assert run("audience", "import", "subscribed.csv").stdout == (
        "added 2, updated 0, unchanged 0, kept unsubscribed 0, skipped 0; read as a Mailchimp "
        "export\n")
    assert run("audience", "import", "unsubscribed.csv").stdout == (
        "added 0, updated 0, unchanged 0, kept unsubscribed 0, imported as unsubscribed 2 "
        "(2 unsubscribed), skipped 0; read as a Mailchimp export\n")
    assert run("audience", "import", "cleaned.csv").stdout == (
        "added 0, updated 0, unchanged 0, kept unsubscribed 0, imported as unsubscribed 1 "
        "(1 cleaned), skipped 0; read as a Mailchimp export\n")
    everyone = people(run)
    assert everyone["grace@example.com"] == ("Grace Hopper", "active", None,
                                             {"company": "Navy"})
    # Mailchimp's tags ("Editors") are the reader's tags
    assert run("audience", "list", "--tag", "editors").stdout.startswith("grace@example.com\t")
    assert everyone["an.zhou@example.com"][:2] == ("周安", "active")  # family name first
    assert everyone["left@example.com"][:2] == ("Lee Ft", "unsubscribed")
    assert everyone["lin.xiaoyu@example.com"][:2] == ("林晓雨", "unsubscribed")  # left there
    assert everyone["bounced@example.com"][1:3] == ("active", "bounce")
    assert "bounced@example.com" not in people(run, "active")
    assert run("audience", "count").stdout == "13 active, 2 unsubscribed, 1 suppressed, 16 in all\n"
    again = run("audience", "import", "unsubscribed.csv")  # a re-import changes nothing
    assert again.stdout.startswith("added 0, updated 0, unchanged 0, kept unsubscribed 2, "
                                   "skipped 0;")


def test_a_listmonk_export(run, project):
    (project / "list.csv").write_text(
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'u1,ok@example.com,Ok,"{""city"": ""Berlin"", ""plan"": {""tier"": 2}}",enabled,x,y\n'
        "u2,blocked@example.com,Blocked,{},blocklisted,x,y\n"
        "u3,off@example.com,Off,,disabled,x,y\n", encoding="utf-8")
    result = run("audience", "import", "list.csv")
    assert result.stdout == ("added 1, updated 0, unchanged 0, kept unsubscribed 0, imported "
                             "as unsubscribed 1 (1 blocklisted), skipped 1 (1 unknown status); "
                             "read as a listmonk export\n")
    assert result.stderr == ("list.csv:4: warning: the status 'disabled' is neither subscribed "
                             "nor unsubscribed to this import; row skipped\n")
    assert people(run) == {
        "ok@example.com": ("Ok", "active", None, {"city": "Berlin", "plan": '{"tier": 2}'}),
        "blocked@example.com": ("Blocked", "unsubscribed", None, {}),
    }


def test_a_substack_export(run, project):
    (project / "list.csv").write_text(
        "email,active_subscription,expiry,email_disabled,created_at\n"
        "reads@example.com,true,2021-07-06T16:20:44.000Z,false,2018-08-27T15:06:27.713Z\n"
        "muted@example.com,true,2025-06-23T23:41:42.980Z,true,2018-08-29T20:50:03.435Z\n"
        "free@example.com,,,false,2018-12-19T08:03:04.977Z\n")
    assert run("audience", "import", "list.csv").stdout == (
        "added 2, updated 0, unchanged 0, kept unsubscribed 0, imported as unsubscribed 1 "
        "(1 email disabled), skipped 0; read as a Substack export\n")
    assert {email: state[1] for email, state in people(run).items()} == {
        "reads@example.com": "active", "muted@example.com": "unsubscribed",
        "free@example.com": "active"}


def test_a_buttondown_export(run, project):
    (project / "list.csv").write_text(
        "email,notes,metadata,tags,creation_date,subscriber_type\n"
        'reg@example.com,met at PyCon,"{""first_name"": ""Bea""}",ai,2020,regular\n'
        "new@example.com,,,,2020,unactivated\n"
        "gone@example.com,,,,2020,unsubscribed\n"
        "dead@example.com,,,,2020,undeliverable\n")
    result = run("audience", "import", "list.csv")
    assert result.stdout == ("added 1, updated 0, unchanged 0, kept unsubscribed 0, imported "
                             "as unsubscribed 2 (1 unsubscribed, 1 undeliverable), skipped 1 "
                             "(1 not confirmed); read as a Buttondown export\n")
    assert result.stderr == ("list.csv:3: warning: not confirmed in the export (the reader "
                             "never answered the confirmation mail); row skipped\n")
    assert people(run) == {
        "reg@example.com": ("", "active", None, {"first_name": "Bea", "notes": "met at PyCon"}),
        "gone@example.com": ("", "unsubscribed", None, {}),
        "dead@example.com": ("", "active", "bounce", {}),
    }


def test_an_export_read_into_a_fresh_database_keeps_who_left(run, audience, project):
    run("audience", "remove", "chen.mo@example.com")
    db = sqlite3.connect(database(project))
    with db:
        db.execute("INSERT INTO suppressions VALUES ('he.yun@example.com', 'bounce', 'test', "
                   "'2023-12-06')")
    db.close()
    assert run("audience", "export", "out.csv").exit_code == 0
    for suffix in ("", "-wal", "-shm"):
        database(project).with_name("newsletter.db" + suffix).unlink(missing_ok=True)
    result = run("audience", "import", "out.csv")
    assert result.stdout == ("added 10, updated 0, unchanged 0, kept unsubscribed 0, imported "
                             "as unsubscribed 2 (1 unsubscribed, 1 suppressed), skipped 0\n")
    assert run("audience", "count").stdout == "10 active, 1 unsubscribed, 1 suppressed, 12 in all\n"


def test_a_status_column_it_does_not_know_skips_the_row(run, project):
    (project / "list.csv").write_text("email,status\na@example.com,subscribed\n"
                                      "b@example.com,pending\nc@example.com,VIP\n"
                                      "d@example.com,Bounced\n")
    result = run("audience", "import", "list.csv")
    assert result.stdout == ("added 1, updated 0, unchanged 0, kept unsubscribed 0, imported "
                             "as unsubscribed 1 (1 bounced), skipped 2 (1 not confirmed, "
                             "1 unknown status)\n")
    assert result.stderr.splitlines() == [
        "list.csv:3: warning: not confirmed in the export (the reader never answered the "
        "confirmation mail); row skipped",
        "list.csv:4: warning: the status 'vip' is neither subscribed nor unsubscribed to this "
        "import; row skipped",
    ]


# --- duplicates and the summary --------------------------------------------------------


def test_duplicates_within_a_file_merge_and_the_later_row_wins(run, audience, project):
    (project / "list.csv").write_text(
        "email,name,city\n"
        "ada@example.com,Ada,London\n"
        "bob@example.com,Bob,\n"
        "ADA@example.com,,Paris\n"
        "lin.xiaoyu@example.com,林晓雨,上海\n"
        "lin.xiaoyu@example.com,晓雨,上海\n"
        "ada@example.com,Ada L.,\n", encoding="utf-8")
    result = run("audience", "import", "list.csv")
    assert result.stdout == ("added 2, updated 1, unchanged 0, kept unsubscribed 0, skipped 3 "
                             "(3 duplicate row merged)\n")
    assert result.stderr.splitlines() == [
        "list.csv:4: warning: ADA@example.com already appears on line 2; the later row wins",
        "list.csv:6: warning: lin.xiaoyu@example.com already appears on line 5; the later row "
        "wins",
        "list.csv:7: warning: ada@example.com already appears on line 2; the later row wins",
    ]
    everyone = people(run)
    assert everyone["ada@example.com"] == ("Ada L.", "active", None, {"city": "Paris"})
    assert everyone["lin.xiaoyu@example.com"][0] == "晓雨"


def test_the_summary_counts_every_reason(run, audience, project):
    run("audience", "remove", "chen.mo@example.com")
    (project / "list.csv").write_text(
        "email,name\n"
        "lin.xiaoyu@example.com,林晓雨\n"   # unchanged
        "zhou.an@example.org,周安安\n"       # updated
        "chen.mo@example.com,陈默\n"        # kept unsubscribed
        "new@example.com,New\n"             # added
        "nope,Nope\n"                       # invalid address
        ",Nobody\n"                         # no address
        "NEW@example.com,New\n", encoding="utf-8")  # duplicate
    result = run("audience", "import", "list.csv")
    assert result.stdout == ("added 1, updated 1, unchanged 1, kept unsubscribed 1, skipped 3 "
                             "(1 invalid address, 1 no address, 1 duplicate row merged)\n")
