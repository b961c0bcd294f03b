"""A local, protocol-faithful Polymarket: Gamma discovery, CLOB /books and the market websocket.

See PROTOCOL.md §2-§6 for the behaviour it reproduces. Start with `Simulator(SimConfig()).run_in_thread()`
(sync) or `async with Simulator() as sim:`; flip `sim.faults` switches on a running simulator.
"""

from pmws.sim.config import Faults, SentFrame, SimConfig
from pmws.sim.server import Simulator, SimulatorThread, serve_forever

__all__ = ["Faults", "SentFrame", "SimConfig", "Simulator", "SimulatorThread", "serve_forever"]
