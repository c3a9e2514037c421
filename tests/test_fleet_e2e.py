"""A camera fleet for real: three `streetwatch daemon` processes sharing nine RTSP cameras on one PostgreSQL, with
the real bundled-size model. One host is killed (-9) and added back, one is hung (SIGSTOP) and resumed, one loses
its database connection (a proxy cut). Every camera must be analysed by exactly one host again within 30 s of
each failure, and the case list must equal that of a run without failovers (a fourth daemon, no fleet, over the
same streams at the same time) and what it was before the failures: no case filed twice, none lost."""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from streetwatch.cases import leases
from streetwatch.cases import tables as t
from streetwatch.cases.dedup import iou_norm
from streetwatch.cases.store import CaseStore
from tests.conftest import shared_path
from tests.daemon_helpers import config_dict, http_get, metric, write_config
from tests.daemon_process import daemon_process, status
from tests.servers.fixtures import free_port, needs_rtsp, rtsp_server, wait_for
from tests.servers.tcp_proxy import TcpProxy
from tests.test_daemon import bus_camera, bus_clip

CAMERAS = [f"cam-{i}" for i in range(9)]
TTL_S = 4.0  # lease: renewed every 1 s, fenced after 3.2 s without a renewal, taken over after 4 s
TAKEOVER_LIMIT_S = 30.0


def analysing(st: dict) -> set[str]:
    """The cameras a host's /status says it analyses now (none while it is fenced)."""
    fleet = st.get("fleet") or {}
    if not st or fleet.get("fenced", True):
        return set()
    return {cid for cid, cam in st.get("cameras", {}).items() if cam.get("state") != "failed"}


class Fleet:
    """The hosts' processes and endpoints; `poll()` records who analyses what, and any camera two hosts run."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.down: set[str] = set()  # killed or stopped: not asked
        self.doubles: list[tuple[float, str]] = []

    def poll(self) -> dict[str, set[str]]:
        seen = {h: analysing(status(p)) for h, p in self.ports.items() if h not in self.down}
        counted: dict[str, int] = {}
        for cams in seen.values():
            for c in cams:
                counted[c] = counted.get(c, 0) + 1
        self.doubles += [(time.monotonic(), c) for c, n in counted.items() if n > 1]
        return seen

    def each_once(self) -> bool:
        seen = self.poll()
        cams = [c for cs in seen.values() for c in cs]
        return sorted(cams) == CAMERAS


def analysed_so_far(fleet: Fleet) -> dict[str, dict[str, float]]:
    """host -> camera -> frames it analysed since it started (its metrics keep counting across a camera's restarts)."""
    out = {}
    for host, port in fleet.ports.items():
        if host not in fleet.down:
            text = http_get(port, "/metrics")[1]
            out[host] = {c: metric(text, "streetwatch_frames_analysed_total", camera=c) for c in CAMERAS}
    return out


def takeover(fleet: Fleet, victim: str, victim_cams: set[str], since: float,
             before: dict[str, dict[str, float]]) -> list[float]:
    """Seconds from `since` until each of `victim_cams` has a NEW frame through the model on another live host
    (`before`: what each host had analysed when the failure began)."""
    done: dict[str, float] = {}
    deadline = since + TAKEOVER_LIMIT_S + 10
    while len(done) < len(victim_cams) and time.monotonic() < deadline:
        for host in fleet.ports:
            if host in fleet.down or host == victim:
                continue
            st = status(fleet.ports[host])
            for cid in victim_cams & analysing(st):
                if cid not in done and st["cameras"][cid].get("frames_analysed", 0) > before[host][cid]:
                    done[cid] = time.monotonic() - since
        time.sleep(0.2)
    assert set(done) == victim_cams, f"not taken over: {sorted(victim_cams - set(done))}"
    return list(done.values())


def watch_unheld(port: int, cams: set[str], until: float) -> dict[str, float]:
    """Poll one host until `until` (monotonic): camera -> most frames it had analysed in a /status where its fleet
    did not hold that camera (the held set is published before a camera starts, so a new lease's frames never
    count)."""
    most = {c: 0.0 for c in cams}
    while True:
        text = http_get(port, "/metrics")[1]  # first: it counts across a camera's restarts
        st = status(port)  # then: not held now means not held when the metrics were read
        held = set((st.get("fleet") or {}).get("held", {})) if st else cams
        for c in cams - held:
            most[c] = max(most[c], metric(text, "streetwatch_frames_analysed_total", camera=c))
        if time.monotonic() >= until:
            return most
        time.sleep(0.2)


def case_list(store: CaseStore) -> list[tuple[str, str, list[float]]]:
    with store.session() as ses:
        rows = ses.execute(select(t.Case.problem_type, t.Case.camera_id, t.Case.box_norm)).all()
    return sorted((ptype, cam, (box or {}).get("xyxy")) for ptype, cam, box in rows)


def cases_per_camera(store: CaseStore) -> str:
    """Which cameras have how many cases, and which none: a failure message that fits on one line."""
    counts = Counter(cam for _, cam, _ in case_list(store))
    return f"cases per camera {dict(sorted(counts.items()))}; none yet: {[c for c in CAMERAS if c not in counts]}"


def same_cases(a: list, b: list) -> bool:
    """The same type and camera, boxes overlapping IoU >= 0.5, one for one (the Ray tests' comparison)."""
    if len(a) != len(b):
        return False
    left = list(b)
    for ptype, cam, box in a:
        match = next((x for x in left if x[0] == ptype and x[1] == cam and iou_norm(box, x[2]) >= 0.5), None)
        if match is None:
            return False
        left.remove(match)
    return True


@needs_rtsp
@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_three_hosts_share_nine_cameras_and_take_over_within_seconds(tmp_path: Path, pg_url: str) -> None:
    model = shared_path("weights", "yolov8n_int8_openvino_model")
    clip = bus_clip(tmp_path)
    store = CaseStore(pg_url)
    proxy = TcpProxy(free_port())
    proxy.up()
    db_name = pg_url.rsplit("/", 1)[1]
    via_proxy = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{db_name}"
    hosts = ["host-a", "host-b", "host-c"]
    ports = {h: free_port() for h in [*hosts, "baseline"]}
    baseline_url = f"sqlite:///{tmp_path / 'baseline.db'}"
    figures: dict[str, list[float]] = {}
    with rtsp_server({f"/{c}": clip for c in CAMERAS}) as rtsp, ExitStack() as stack:
        def config(host: str) -> Path:
            cams = [{**bus_camera(c, rtsp.url(f"/{c}")), "analysis_fps": 1} for c in CAMERAS]
            data = config_dict(tmp_path / host, cams, http={"port": ports[host]})
            data["defaults"] = {**data["defaults"], "model": str(model)}
            if host == "baseline":  # the same cameras, one daemon, no fleet, no failure, its own database
                data["database"] = baseline_url
                return write_config(tmp_path / f"{host}.yaml", data)
            data["database"] = via_proxy if host == "host-c" else pg_url  # host-c's connection can be cut
            data["fleet"] = {"enabled": True, "host": host, "capacity": 6, "lease_ttl_s": TTL_S}
            return write_config(tmp_path / f"{host}.yaml", data)

        def start(host: str, n: int = 0):
            log = tmp_path / f"{host}.{n}.log"
            return stack.enter_context(daemon_process(config(host), log)), log

        procs = {h: start(h)[0] for h in hosts}
        start("baseline")  # the run without failovers, side by side over the same streams and the same minutes
        fleet = Fleet({h: ports[h] for h in hosts})

        def logs() -> str:
            return "\n".join(p.read_text()[-1500:] for p in sorted(tmp_path.glob("*.log")))

        assert wait_for(fleet.each_once, 90, 0.5), logs()
        # hosts whose model loaded last join a running fleet: after settling, they get their share (9 x 6/18 each)
        assert wait_for(lambda: sorted(len(c) for c in fleet.poll().values()) == [3, 3, 3] and fleet.each_once(),
                        30, 0.5), (fleet.poll(), logs())
        assert wait_for(lambda: len(case_list(store)) == len(CAMERAS), 60, 0.5), (cases_per_camera(store), logs())
        before = case_list(store)
        assert {(p, c) for p, c, _ in before} == {("illegal_parking", c) for c in CAMERAS}

        # 1. kill -9: its leases expire on the database clock; the others take its cameras
        victim, before_kill = fleet.poll()["host-a"], analysed_so_far(fleet)
        procs["host-a"].kill()
        procs["host-a"].wait()
        fleet.down.add("host-a")
        figures["kill -9"] = takeover(fleet, "host-a", victim, time.monotonic(), before_kill)
        assert wait_for(fleet.each_once, TAKEOVER_LIMIT_S, 0.3)

        # 2. the host comes back: after settling it takes its share, without cameras flapping afterwards
        procs["host-a"] = start("host-a", 1)[0]
        fleet.down.discard("host-a")
        back_at = time.monotonic()
        assert wait_for(lambda: len(fleet.poll().get("host-a", ())) == 3 and fleet.each_once(), 40, 0.3), logs()
        figures["host back (settle + handover)"] = [time.monotonic() - back_at]
        settled = fleet.poll()
        time.sleep(3 * TTL_S / 4 * 2)
        assert fleet.poll() == settled, "cameras moved although no host came or went"

        # 3. SIGSTOP: the hung host's TCP session stays open, but its leases expire
        victim, before_stop = settled["host-b"], analysed_so_far(fleet)
        before_stop["host-b"] = analysed_so_far(Fleet({"host-b": ports["host-b"]}))["host-b"]  # last: just before
        os.kill(procs["host-b"].pid, signal.SIGSTOP)
        fleet.down.add("host-b")
        try:
            figures["SIGSTOP"] = takeover(fleet, "host-b", victim, time.monotonic(), before_stop)
        finally:
            os.kill(procs["host-b"].pid, signal.SIGCONT)
        fleet.down.discard("host-b")
        resumed = time.monotonic()
        # resumed, it finds its leases gone: it analyses nothing it no longer holds (fenced at once on resume).
        # Once settled it may be given cameras again, its old ones among them: frames counted while it holds a
        # camera again are its new lease's, so only the samples where it does not hold the camera are compared.
        # (only host-b is polled while watching: the fleet's double-count check stays as it was, at the moments
        # the test waits for one host per camera, not through a whole rebalance that moves three cameras at once)
        unheld = watch_unheld(ports["host-b"], victim, until=resumed + 2 * TTL_S)
        assert wait_for(fleet.each_once, TAKEOVER_LIMIT_S, 0.3), logs()
        figures["SIGCONT: watched for 2 ttl, then one host per camera"] = [time.monotonic() - resumed]
        # at most the one model batch that was running when it was stopped completes on resume; nothing after it
        assert all(unheld[c] - before_stop["host-b"][c] <= 1 for c in victim), (unheld, before_stop["host-b"])

        # 4. database cut: host-c cannot renew, fences itself before its leases expire; the others take over
        assert wait_for(lambda: len(fleet.poll().get("host-c", ())) > 0, 40, 0.3), logs()
        victim, before_cut = fleet.poll()["host-c"], analysed_so_far(fleet)
        proxy.down()
        figures["database cut"] = takeover(fleet, "host-c", victim, time.monotonic(), before_cut)
        fenced = status(ports["host-c"]).get("fleet", {})
        assert fenced.get("fenced") is True and analysing(status(ports["host-c"])) == set()
        proxy.up()
        assert wait_for(fleet.each_once, TAKEOVER_LIMIT_S, 0.3), logs()
        # what it saw before the cut and could not write (its tracks' final versions) waited in its spool: replayed
        assert wait_for(lambda: status(ports["host-c"])["database"]["spool_pending"] == 0, 20, 0.3), logs()
        scraped = http_get(ports["host-c"], "/metrics")[1]
        spooled = metric(scraped, "streetwatch_db_writes_total", result="spooled")
        assert spooled > 0 and metric(scraped, "streetwatch_spool_replayed_total") == spooled

        for host, port in ports.items():  # the metrics say the same as /status
            held = metric(http_get(port, "/metrics")[1], "streetwatch_fleet_camera_held", host=host)
            assert held == len(analysing(status(port))), host
        with store.engine.begin() as conn:
            view = leases.fleet_view(conn)
        owners = view.owners()
        assert sorted(owners) == CAMERAS and all(owners[c] in hosts for c in CAMERAS)
        after = case_list(store)
        baseline = case_list(CaseStore(baseline_url))
    proxy.down()
    takeovers = [s for k in ("kill -9", "SIGSTOP", "database cut") for s in figures[k]]
    print("\nfleet takeover (s): " + "; ".join(f"{k}: {', '.join(f'{s:.1f}' for s in sorted(v))}"
                                             for k, v in figures.items()))
    print(f"takeover p50 {statistics.median(takeovers):.1f} s, max {max(takeovers):.1f} s over {len(takeovers)} "
          f"cameras; doubles seen: {len(fleet.doubles)}")
    assert max(takeovers) < TAKEOVER_LIMIT_S
    # a camera in two hosts' /status is seen at most within one handover (the polls are not one instant)
    assert len({c for _, c in fleet.doubles}) <= 1, fleet.doubles
    assert same_cases(before, after), (before, after)
    assert same_cases(baseline, after), (baseline, after)  # the list of the run without failovers
