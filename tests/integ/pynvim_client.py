#!/usr/bin/python3
"""A stock msgpack-rpc client, pynvim's, against ao's three daemon sockets.

    pynvim_client.py STORAGED_SOCK CDCD_SOCK LCMD_SOCK

Run by tests/integ/test_connections.c with Debian's python3-pynvim (0.4.2,
on python3-msgpack 1.0).  pynvim packs the method names given as bytes as
msgpack bin and those given as str as str, and every request or notification
takes positional arguments: socket_session() itself opens with
[2, bin "nvim_set_client_info", [5 positional values]], and Neovim answers a
notification it does not know (cdcd's `event`) with
[2, "nvim_error_event", [0, "Invalid method: event"]].  ao's daemons must drop
such notifications and keep the connection (DESIGN.md §3): every step below
is followed by a request on the same session, which fails once the daemon
has closed it.  Prints one line per check; exits 1 at the first failure.
"""
import signal
import sys

from pynvim.msgpack_rpc import socket_session
from pynvim.util import get_client_info


class RpcError(Exception):
    """An error response; args[0] is ao's error map."""


def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)
    print("ok: " + what, flush=True)


def connect(path):
    # socket_session sends pynvim's nvim_set_client_info notification first.
    s = socket_session(path)
    s.error_wrapper = RpcError
    return s


def pynvim_notifications(s):
    """The two foreign shapes, as pynvim packs them."""
    s.request(b"nvim_set_client_info",
              *get_client_info("client", "remote", {}), async_=True)
    s.request("nvim_error_event", 0, "Invalid method: event", async_=True)


def still_open(s, name, after):
    check("now" in s.request("ping"), "%s answers ping after %s" % (name, after))


def bad_envelope(s, name):
    """A request with a bin method: an error answer, not a close."""
    try:
        s.request(b"ping")
        code = None
    except RpcError as e:
        code = e.args[0].get("code")
    check(code == "bad_request", "%s answers a bin-method request with "
          "bad_request (got %r)" % (name, code))


def next_event(s, what):
    while True:
        kind, method, args = s.next_message()
        if kind == "notification" and method == "event":
            check(len(args) == 1 and "seq" in args[0], what)
            return args[0]


def main():
    storaged, cdcd, lcmd = sys.argv[1:4]
    signal.alarm(60)	# the test's own deadline is longer

    probe = connect(storaged)
    packed = probe._async_session._msgpack_stream._packer.pack(
        [2, b"nvim_set_client_info", []])
    check(packed[2] == 0xc4, "pynvim packs a bytes method name as bin")
    packed = probe._async_session._msgpack_stream._packer.pack(
        [0, 1, "hello", ()])
    check(packed[3] & 0xe0 == 0xa0, "pynvim packs a str method name as str")
    probe.close()

    sessions = {}
    for name, path in (("storaged", storaged), ("lcmd", lcmd),
                       ("cdcd", cdcd)):
        s = connect(path)
        sessions[name] = s
        hello = s.request("hello")
        check(hello.get("component") == name and hello.get("proto") == 1,
              "%s answers hello after nvim_set_client_info" % name)
        pynvim_notifications(s)
        still_open(s, name, "pynvim's notifications")
        bad_envelope(s, name)

    st, lc, cd = sessions["storaged"], sessions["lcmd"], sessions["cdcd"]
    p = st.request("project.upsert", {"id": "pyn", "path": "/srv/pyn"})
    check(p.get("id") == "pyn", "storaged project.upsert")
    listed = lc.request("project.list")
    check([x["id"] for x in listed["projects"]] == ["pyn"],
          "lcmd project.list (through storaged)")
    check("subscribers" in cd.request("stats"), "cdcd stats")

    sub = cd.request("subscribe", {"from": 0})
    check("head" in sub and "oldest" in sub, "cdcd subscribe {from: 0}")
    first = next_event(cd, "cdcd sends the first event")
    # What Neovim, as the subscriber, would answer to `event`.
    cd.request("nvim_error_event", 0, "Invalid method: event", async_=True)
    pynvim_notifications(cd)
    st.request("project.upsert", {"id": "pyn2", "path": "/srv/pyn2"})
    second = next_event(cd, "cdcd keeps streaming after nvim_error_event")
    check(second["seq"] > first["seq"], "events in order")
    still_open(cd, "cdcd", "the subscription and the answers to it")
    for name, s in sessions.items():
        pynvim_notifications(s)
        still_open(s, name, "everything")
        s.close()
    print("pynvim: all checks passed", flush=True)


main()
