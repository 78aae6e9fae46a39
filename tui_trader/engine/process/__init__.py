"""The engine in a child process, behind the same EngineHandle the console uses in-process.

Rendering and the engine sharing one loop (and one GIL) delay every order by a frame
(DESIGN §5); in a child process they do not. Modules:

- :mod:`~tui_trader.engine.process.proxy`: :class:`EngineProxy`, the handle the console holds;
- :mod:`~tui_trader.engine.process.proxy_core`, :mod:`~tui_trader.engine.process.out_of_band` and
  :mod:`~tui_trader.engine.process.feed`: the layers under it (its state, a kill the child
  did not run, the feed and the child's failure);
- :mod:`~tui_trader.engine.process.host`: the child's main, serving the real engine;
- :mod:`~tui_trader.engine.process.subscription`: the console's event queue fed from the child;
- :mod:`~tui_trader.engine.process.wire`: the messages and their framing;
- :mod:`~tui_trader.engine.process.views`: what the proxy shows when the child cannot say.
"""
