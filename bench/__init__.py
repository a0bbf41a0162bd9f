"""The benchmark harness: load generators, ceilings, scenarios, reports.

``idnode bench`` (bench/cli.py) -> runner (seed a home, start the node,
run scenarios, ceilings, report) -> measure (one scenario kind each) ->
loadgen (generator processes: gen_dgram for HS-UDP, gen_stream for HS-TCP
and HTTP) and servers/ceilings (the processes under test). See README.md.
"""
