"""A real RTSP server (GStreamer) that loops H.264 mp4 clips, for tests. Run by the SYSTEM python3.

    /usr/bin/python3 rtsp_server.py --port 8554 --mount /cam1 --file clip.mp4 [--mount /cam2 --file b.mp4]

Prints "READY" on stdout once it listens. Needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-rtsp and gstreamer1.0-plugins-{base,good,bad}; python3-gi cannot be imported from a venv.

Why it is built this way (see ENVIRONMENT.md, "Live streams in tests"):
- Loops use non-flushing SEGMENT seeks sent to `pay0`: rewinding at end-of-file makes the
  server send RTCP BYE and clients stop, whereas a segment seek keeps running time increasing.
- `set_shared(False)`: with a shared media every new client's PLAY would rewind everyone.
- `--freeze-after S`: each client's video stops S seconds after it starts while its TCP
  connection stays open (buffers are dropped at `pay0`), as with a hung camera.
- `--live-epoch T`: each client starts where a camera filming since UNIX time T would be (the clip's
  position `now - T`, looped) instead of at its start, as a drone's live stream is: a reconnecting
  client has missed what was filmed meanwhile. Exact only for clips whose every frame is a keyframe.
- PLAY waits for the first segment after the initial flushing seek: the flush clears the stream's
  segment, and a PLAY handled in that window makes `gst_rtsp_media_get_rates` hit `g_assert (FALSE)`
  ("complete stream without rate"), which aborts the whole server (seen on loaded hosts). PLAY waits for
  the segment (up to 3 s, then 503 and the client retries). That narrows the window but does not close
  it (the initial seek runs on the main loop, PLAY on a client thread), so the server also runs under a
  small supervisor: when GStreamer aborts, the server is started again on the same port and clients
  reconnect as they would to a camera that rebooted. Killing the supervisor kills the server with it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

SEGMENT_FLAGS = Gst.SeekFlags.SEGMENT
_Status = GstRtspServer.RTSPMediaStatus
GONE = (_Status.UNPREPARING, _Status.UNPREPARED, _Status.ERROR)


def _seek_start(media: GstRtspServer.RTSPMedia, pay: Gst.Element, flags: Gst.SeekFlags,
                state: dict | None = None, live_epoch: float | None = None) -> bool:
    if media.get_status() in GONE:
        return False  # the client left meanwhile; nothing to loop
    if state is not None and flags & Gst.SeekFlags.FLUSH:
        state["ready"] = False  # from here until the next segment, the stream has no rate: PLAY must wait
    start = 0
    if live_epoch is not None:  # where a camera filming since the epoch is now
        ok, duration = pay.query_duration(Gst.Format.TIME)
        start = int(max(0.0, time.time() - live_epoch) * Gst.SECOND)
        start = start % duration if ok and duration > 0 else start
        if state is not None:
            state["live_from"] = start
    if not pay.seek(1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, start, Gst.SeekType.NONE, -1):
        print("rtsp_server: segment seek failed", file=sys.stderr, flush=True)
    return False  # GLib.idle_add: run once


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """One unshared, looping media per client."""

    def __init__(self, clip: Path, freeze_after_s: float | None, live_epoch: float | None = None) -> None:
        super().__init__()
        self.freeze_after_s = freeze_after_s
        self.live_epoch = live_epoch
        self.playable: dict[str, dict] = {}  # media pipeline name -> {"flushed", "ready"} (see the module doc)
        self.set_launch(
            f'( filesrc location="{clip}" ! qtdemux ! h264parse '
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        self.set_shared(False)
        self.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        self.connect("media-configure", self._on_media_configure)

    def _on_media_configure(self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        pay = media.get_element().get_by_name("pay0")
        state = self.playable[media.get_element().get_name()] = {"ready": False, "epoch": self.live_epoch}
        # The first segment seek has to be flushing and made once the pipeline prerolled;
        # later ones (on segment-done) must not flush, or running time restarts.
        media.connect("prepared", lambda m: GLib.idle_add(_seek_start, m, pay, Gst.SeekFlags.FLUSH | SEGMENT_FLAGS,
                                                          state))
        pay.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, self._on_event, (media, pay, state))
        if self.live_epoch is not None:  # nothing from before the live position reaches the client
            pay.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, self._live_probe, state)
        if self.freeze_after_s is not None:
            state = {"first": None}
            pay.get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._freeze_probe, state
            )

    @staticmethod
    def _on_event(_pad: Gst.Pad, info: Gst.PadProbeInfo, target: tuple) -> Gst.PadProbeReturn:
        media, pay, state = target
        kind = info.get_event().type
        if kind == Gst.EventType.FLUSH_START:
            state["ready"] = False  # the segment is gone until the next one arrives
        elif kind == Gst.EventType.SEGMENT:
            live_from = state.get("live_from")
            if live_from and info.get_event().parse_segment().start < live_from - Gst.SECOND // 10:
                # the server rewound the stream after the live seek (its PLAY handling): seek to "now" again
                GLib.idle_add(_seek_start, media, pay, Gst.SeekFlags.FLUSH | SEGMENT_FLAGS, state, state["epoch"])
                return Gst.PadProbeReturn.OK
            state["ready"] = True
        elif kind == Gst.EventType.SEGMENT_DONE:
            state["live_from"] = None  # looped: the clip's start is live now
            # Seeking from the streaming thread could deadlock; do it from the main loop.
            GLib.idle_add(_seek_start, media, pay, SEGMENT_FLAGS)
        return Gst.PadProbeReturn.OK

    @staticmethod
    def _live_probe(_pad: Gst.Pad, info: Gst.PadProbeInfo, state: dict) -> Gst.PadProbeReturn:
        live_from = state.get("live_from")
        if live_from and info.get_buffer().pts < live_from - Gst.SECOND // 10:
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    def play_ready(self, media: GstRtspServer.RTSPMedia | None) -> bool:
        if media is None:
            return True
        state = self.playable.get(media.get_element().get_name())
        return state is None or state["ready"]

    def _freeze_probe(self, _pad: Gst.Pad, _info: Gst.PadProbeInfo, state: dict) -> Gst.PadProbeReturn:
        now = time.monotonic()
        if state["first"] is None:
            state["first"] = now
        if now - state["first"] > self.freeze_after_s:
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK


def supervise(argv: list[str]) -> None:
    """Run the server in a child process and start it again when GStreamer aborts it (see the module doc)."""
    import ctypes
    import signal
    import subprocess

    libc = ctypes.CDLL("libc.so.6", use_errno=True)

    def die_with_parent() -> None:
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: a killed supervisor takes the server with it

    announced = False
    while True:
        child = subprocess.Popen([sys.executable, __file__, *argv, "--child"], stdout=subprocess.PIPE, text=True,
                                 preexec_fn=die_with_parent)
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "READY" and not announced:
                print("READY", flush=True)
                announced = True
        code = child.wait()
        if code >= 0:  # a normal exit (cannot listen, bad arguments): pass it on
            sys.exit(code)
        print(f"rtsp_server: GStreamer's server died ({signal.Signals(-code).name}); starting it again",
              file=sys.stderr, flush=True)


def main() -> None:
    if "--child" not in sys.argv:
        supervise(sys.argv[1:])
        return
    parser = argparse.ArgumentParser(description="Loop H.264 mp4 clips over RTSP (TCP).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", required=True, help="e.g. /cam1; one per --file")
    parser.add_argument("--file", action="append", required=True, type=Path, help="H.264 mp4 to loop")
    parser.add_argument("--freeze-after", type=float, default=None, help="stop sending video after S s")
    parser.add_argument("--live-epoch", type=float, default=None,
                        help="start each client where a camera filming since this UNIX time would be")
    parser.add_argument("--child", action="store_true", help="run the server itself (the supervisor passes it)")
    args = parser.parse_args()
    if len(args.mount) != len(args.file):
        parser.error("give one --file per --mount")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    factories = []
    for mount, clip in zip(args.mount, args.file):
        if not clip.is_file():
            parser.error(f"no such clip: {clip}")
        factories.append(LoopingFactory(clip.resolve(), args.freeze_after, args.live_epoch))
        mounts.add_factory(mount if mount.startswith("/") else "/" + mount, factories[-1])

    def pre_play(_client: GstRtspServer.RTSPClient, ctx: GstRtspServer.RTSPContext) -> GstRtsp.RTSPStatusCode:
        if args.live_epoch is not None and ctx.media is not None:
            # a live stream plays from where it is now: seek there just before PLAY (the server rewinds a prepared
            # media itself, so earlier is too early), and drop the client's "Range: npt=0-", which would rewind it
            ctx.request.remove_header(GstRtsp.RTSPHeaderField.RANGE, -1)
            pay = ctx.media.get_element().get_by_name("pay0")
            state = next((f.playable.get(ctx.media.get_element().get_name()) for f in factories
                          if ctx.media.get_element().get_name() in f.playable), None)
            if state is not None:
                state["ready"] = False
            GLib.idle_add(_seek_start, ctx.media, pay, Gst.SeekFlags.FLUSH | SEGMENT_FLAGS, state, args.live_epoch)
        # runs on the client's thread: waiting here does not hold up the main loop that makes the segment
        deadline = time.monotonic() + 3.0
        while not all(f.play_ready(ctx.media) for f in factories):
            if time.monotonic() > deadline:
                return GstRtsp.RTSPStatusCode.SERVICE_UNAVAILABLE
            time.sleep(0.02)
        return GstRtsp.RTSPStatusCode.OK

    server.connect("client-connected", lambda _s, client: client.connect("pre-play-request", pre_play))
    for _ in range(30):  # a server started again may find the port still held for a moment
        if server.attach(None) != 0:
            break
        time.sleep(0.1)
    else:
        print(f"cannot listen on port {args.port}", file=sys.stderr, flush=True)
        sys.exit(1)
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
