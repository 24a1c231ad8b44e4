"""
A load benchmark for chatservice that runs the same workloads, in the same
invocation, against other chat servers: Twisted's own IRC server
(C{twisted.words}) and ngircd.

    python -m chatservice.bench                  # the full run (minutes)
    python -m chatservice.bench --quick          # a small run (seconds)
    python -m chatservice.bench --servers chatservice,ngircd --workloads fanout
    python -m chatservice.bench --target 127.0.0.1:8123 --target-pid 1234

Workloads (each against a freshly started server, so that one workload's
memory and buffers do not colour the next):

  - B{fanout}: N clients in one room; S of them send M messages each as
    fast as the server takes them.  Reports deliveries per second (messages
    received by the N - S receivers, divided by the time from the first
    message sent to the last one received) and checks that every copy
    arrived: C{lost} counts the copies that the receivers, and the senders
    (who see each other's messages), never got.
  - B{latency}: the same room with a paced offered rate of deliveries per
    second; reports p50, p99 and max delivery latency.
  - B{capacity}: K clients connect, log in and stay idle in the default
    room; reports the time that took and the server's resident memory
    growth per connection (C{VmRSS} of the server process, before and after).
  - B{storm}: L clients connect and log in as fast as the server admits
    them; reports connections plus logins per second.

The generator speaks chatservice's line protocol and IRC (PASS, NICK, USER,
JOIN, PRIVMSG), so "logged in" means, for IRC, registered and joined to
C{#lobby} (end of NAMES), which is what a chatservice login includes.

So that the generator is not the bottleneck, clients run in separate worker
processes (C{--procs}) on the epoll reactor, count delivered messages in
bulk (C{bytes.count} of a marker per read; nothing is parsed), parse lines
only on a few sampling clients for latency, and every workload reports the
generator's own CPU use next to the server's.
"""

from chatservice.bench.cli import main

__all__ = ["main"]
