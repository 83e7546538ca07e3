# The `rig`, `dut`, `bus` and `platform` fixtures come from the rig plugin (tests/plugin, registered in
# tests/conftest.py). On the sim rig, `rig` also offers the SimRig API of simrig.py (gateway_process,
# meters, platform, site, wait_for, now), so tests written against SimRig keep working.
