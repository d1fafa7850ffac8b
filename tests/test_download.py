"""Download code against a local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
import zipfile

import pandas as pd
import pytest

from synergyseg.data import download
from synergyseg.errors import InputDataError


def test_fetch_downloads_and_verifies(server, tmp_path):
    root, url = server
    payload = b"kits19 imaging bytes" * 1000
    (root / "master_00000.nii.gz").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    dest = download.fetch(
        f"{url}/master_00000.nii.gz", tmp_path / "out" / "imaging.nii.gz", sha[:12]
    )
    assert dest.read_bytes() == payload
    # already present and verified: no second request needed, even with the server gone
    (root / "master_00000.nii.gz").unlink()
    assert download.fetch(f"{url}/master_00000.nii.gz", dest, sha) == dest


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    root, url = server
    (root / "part.zip").write_bytes(b"tampered")
    dest = tmp_path / "part.zip"
    with pytest.raises(InputDataError, match="part.zip.*SHA-256 .* does not match"):
        download.fetch(f"{url}/part.zip", dest, "00" * 32)
    assert not dest.exists() and not list(tmp_path.glob(".part.zip*"))


def test_offline_is_a_clear_error(tmp_path):
    dest = tmp_path / "imaging.nii.gz"
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(InputDataError, match="could not download .* place the file there by hand"):
        download.fetch("http://127.0.0.1:9/master_00000.nii.gz", dest, retries=1)
    assert not dest.exists()


class FlakyHost(http.server.BaseHTTPRequestHandler):
    """A file host that honours range requests (or not: ``ranges``) and cuts the first
    ``cuts`` responses short after ``cut_at`` bytes, announcing the full length."""

    payload = b""
    ranges = True
    cuts = 0
    cut_at = 0
    etag: str | None = None  # sent when set; an If-Range naming another one gets it all
    if_range = True  # False: a host that ignores If-Range and honours Range regardless
    requests: list[str | None] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        cls = type(self)
        asked = self.headers.get("Range")
        cls.requests.append(asked)
        current = self.headers.get("If-Range") in (None, cls.etag) or not cls.if_range
        start = (
            int(asked.removeprefix("bytes=").rstrip("-")) if asked and cls.ranges and current else 0
        )
        if start >= len(cls.payload):  # as real hosts answer a range past the end
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(cls.payload)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = cls.payload[start:]
        self.send_response(206 if start else 200)
        if cls.etag:
            self.send_header("ETag", cls.etag)
        if start:
            self.send_header(
                "Content-Range", f"bytes {start}-{len(cls.payload) - 1}/{len(cls.payload)}"
            )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cls.cuts > 0:
            cls.cuts -= 1
            body = body[: cls.cut_at]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_host():
    FlakyHost.payload = bytes(range(256)) * 400  # 102,400 bytes
    FlakyHost.ranges, FlakyHost.cuts, FlakyHost.cut_at, FlakyHost.requests = True, 0, 0, []
    FlakyHost.etag, FlakyHost.if_range = None, True
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyHost)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield FlakyHost, f"http://127.0.0.1:{httpd.server_address[1]}/imaging.nii.gz"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_cut_short_is_never_published_and_resumes_where_it_stopped(
    flaky_host, tmp_path, monkeypatch
):
    host, url = flaky_host
    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)
    dest = tmp_path / "case_00000" / "imaging.nii.gz"
    host.cuts, host.cut_at = 1, 5_000
    with pytest.raises(InputDataError, match="could not download .*5000 of 102400 bytes.*resumes"):
        download.fetch(url, dest, retries=1)
    assert not dest.exists()  # 5,000 bytes never look like a finished file
    # the next run asks only for the rest
    sha = hashlib.sha256(host.payload).hexdigest()
    assert download.fetch(url, dest, sha).read_bytes() == host.payload
    assert host.requests == [None, "bytes=5000-"]
    assert not list(dest.parent.glob(".*"))


def test_a_file_changed_on_the_server_is_fetched_whole_not_spliced(
    flaky_host, tmp_path, monkeypatch, caplog
):
    """A download resumed after the file changed on the server would join the old file's
    first bytes to the new file's rest: with no pin nothing would notice. The resumed request
    names the version it started (If-Range), and a host holding another sends it whole."""
    host, url = flaky_host
    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)
    dest = tmp_path / "imaging.nii.gz"
    host.etag, host.cuts, host.cut_at = '"v1"', 1, 5_000
    with pytest.raises(InputDataError, match="resumes"):
        download.fetch(url, dest, retries=1)
    host.payload, host.etag = bytes(reversed(host.payload)), '"v2"'  # a new release
    with caplog.at_level("INFO", logger=download.log.name):
        assert download.fetch(url, dest).read_bytes() == host.payload
    assert host.requests == [None, "bytes=5000-"]  # asked to resume, answered 200 with v2
    assert "sent the whole file again" in caplog.text
    assert not list(tmp_path.glob(".*"))

    dest.unlink()
    host.cuts, host.requests = 1, []
    with pytest.raises(InputDataError, match="resumes"):
        download.fetch(url, dest, retries=1)
    caplog.clear()
    with caplog.at_level("INFO", logger=download.log.name):
        assert download.fetch(url, dest).read_bytes() == host.payload  # unchanged: resumed
    assert "resuming" in caplog.text and "whole file again" not in caplog.text
    assert host.requests == [None, "bytes=5000-"]
    assert not list(tmp_path.glob(".*"))

    dest.unlink()  # a host that ignores If-Range: its 206 names another version
    host.cuts, host.requests, host.if_range = 1, [], False
    with pytest.raises(InputDataError, match="resumes"):
        download.fetch(url, dest, retries=1)
    host.payload, host.etag = bytes(range(256)) * 400, '"v3"'
    assert download.fetch(url, dest).read_bytes() == host.payload
    assert host.requests == [None, "bytes=5000-", None]  # the 206 refused, fetched again
    assert not list(tmp_path.glob(".*"))


def test_a_whole_part_left_by_a_killed_job_is_published_not_fetched_again(flaky_host, tmp_path):
    host, url = flaky_host
    dest = tmp_path / "imaging.nii.gz"
    (tmp_path / ".imaging.nii.gz.part").write_bytes(host.payload)  # killed before the rename
    sha = hashlib.sha256(host.payload).hexdigest()
    assert download.fetch(url, dest, sha).read_bytes() == host.payload
    assert host.requests == ["bytes=102400-"]  # answered 416, bytes */102400: nothing to fetch


def test_a_host_without_range_requests_is_downloaded_again_from_the_start(
    flaky_host, tmp_path, monkeypatch, caplog
):
    host, url = flaky_host
    monkeypatch.setattr(download.time, "sleep", lambda seconds: None)
    host.ranges, host.cuts, host.cut_at = False, 2, 70_000
    dest = tmp_path / "imaging.nii.gz"
    with caplog.at_level("INFO", logger=download.log.name):
        assert download.fetch(url, dest, retries=3).read_bytes() == host.payload
    assert host.requests == [None, "bytes=70000-", "bytes=70000-"]  # answered 200 each time
    # unpinned, the log gives the hash to pin this copy with
    assert f"SHA-256 {hashlib.sha256(host.payload).hexdigest()}" in caplog.text


def test_extract_zip_and_refuse_zip_slip(tmp_path):
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("ISIC2018_Task1-2_Training_Input/ISIC_0000000.jpg", b"jpg")
    download.extract_zip(good, tmp_path / "out")
    assert (
        tmp_path / "out" / "ISIC2018_Task1-2_Training_Input" / "ISIC_0000000.jpg"
    ).read_bytes() == b"jpg"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", b"x")
    with pytest.raises(InputDataError, match="outside"):
        download.extract_zip(evil, tmp_path / "out2")
    (tmp_path / "broken.zip").write_bytes(b"PK nope")
    with pytest.raises(InputDataError, match="broken.zip: not a valid zip"):
        download.extract_zip(tmp_path / "broken.zip", tmp_path / "out3")


class FakeArchive(http.server.BaseHTTPRequestHandler):
    """The ISIC archive's image search: ``?query=isic_id:A OR isic_id:B&limit=N``, answered in
    pages linked by ``next``; the first ``failures`` requests get a 503."""

    labels: dict[str, str] = {}
    field = "diagnosis_1"  # the archive's field since 2025 (before: benign_malignant)
    failures = 0
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        type(self).requests.append(self.path)
        if type(self).failures > 0:
            type(self).failures -= 1
            self.send_error(503)
            return
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        wanted = [term.removeprefix("isic_id:") for term in query["query"][0].split(" OR ")]
        limit, offset = int(query["limit"][0]), int(query.get("offset", ["0"])[0])
        known = [i for i in wanted if i in self.labels]
        page = known[offset : offset + limit]
        more = offset + limit < len(known)
        body = {
            "results": [
                {"isic_id": i, "metadata": {"clinical": {self.field: self.labels[i]}}} for i in page
            ],
            "next": f"{self.path}&offset={offset + limit}" if more else None,
        }
        if more:  # absolute, as the real API gives it
            body["next"] = f"http://127.0.0.1:{self.server.server_address[1]}{body['next']}"
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def archive():
    FakeArchive.labels, FakeArchive.failures, FakeArchive.requests = {}, 0, []
    FakeArchive.field = "diagnosis_1"
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeArchive)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield FakeArchive, f"http://127.0.0.1:{httpd.server_address[1]}/api/v2/images/search/"
    httpd.shutdown()
    httpd.server_close()


def isic_folder(tmp_path, n):
    isic = tmp_path / "isic"
    isic.mkdir()
    for i in range(n):
        (isic / f"ISIC_{i:07d}.jpg").write_bytes(b"")
    return isic


def test_isic_labels_are_fetched_in_pages_with_retries(archive, tmp_path):
    fake, url = archive
    isic = isic_folder(tmp_path, 5)
    fake.labels = {f"ISIC_{i:07d}": ("Benign", "Malignant")[i % 2] for i in range(4)}
    fake.failures = 2  # two failed requests, then the archive answers
    labels = download.fetch_isic_labels(
        [f"ISIC_{i:07d}" for i in range(5)], url, page_size=3, backoff=0.01
    )
    expected = {i: label.lower() for i, label in fake.labels.items()}
    assert labels == {**expected, "ISIC_0000004": "unknown"}  # not in the archive
    # 2 failures + ids 0-2 in one page, ids 3-4 in another: one request per page, not per image
    assert len(fake.requests) == 4
    download.write_isic_labels(isic, tmp_path / "labels.csv", api_url=url, backoff=0.01)
    table = pd.read_csv(tmp_path / "labels.csv")
    assert table["benign_malignant"].tolist() == [
        "benign",
        "malignant",
        "benign",
        "malignant",
        "unknown",
    ]


def test_records_without_a_label_field_fail_instead_of_a_table_of_unknowns(archive, tmp_path):
    fake, url = archive
    isic = isic_folder(tmp_path, 4)
    fake.labels = {f"ISIC_{i:07d}": "benign" for i in range(4)}
    fake.field = "benign_malignant"  # an older mirror of the archive: still read
    download.write_isic_labels(isic, tmp_path / "old.csv", api_url=url, backoff=0.01)
    assert set(pd.read_csv(tmp_path / "old.csv")["benign_malignant"]) == {"benign"}
    fake.field = "some_future_field"  # the records changed again: every label would be lost
    with pytest.raises(InputDataError, match="no benign/malignant label for 4 of 4 .*labels_csv"):
        download.write_isic_labels(isic, tmp_path / "labels.csv", api_url=url, backoff=0.01)
    assert not (tmp_path / "labels.csv").exists()


def test_unreachable_archive_fails_and_says_how_to_give_the_labels(tmp_path):
    isic = isic_folder(tmp_path, 3)
    with pytest.raises(
        InputDataError, match="(?s)labels.csv: could not fetch.*labels_csv.*fetch_labels: false"
    ):
        download.write_isic_labels(
            isic,
            tmp_path / "labels.csv",
            api_url="http://127.0.0.1:9/search/",
            retries=1,
            backoff=0.01,
        )
    assert not (tmp_path / "labels.csv").exists()  # never a table of silent 'unknown's


def test_without_fetching_every_label_is_unknown_on_purpose(tmp_path):
    isic = isic_folder(tmp_path, 3)
    download.write_isic_labels(isic, tmp_path / "labels.csv", fetch=False)
    assert set(pd.read_csv(tmp_path / "labels.csv")["benign_malignant"]) == {"unknown"}
