"""The ``french`` module of plugin ``hello``: adds a greeting through the ``hello.greetings`` extension point."""

from __future__ import annotations

from greenroom_hello_plugin.plugin import Greetings, greetings_extension_point
from host import Registrar, create_backend_module


# -- start module --
def _register(reg: Registrar) -> None:
    def init(greetings: Greetings) -> None:
        greetings.add("fr", "Bonjour")

    reg.register_init(deps={"greetings": greetings_extension_point}, init=init)


#: Runs before plugin ``hello``'s own init, so the plugin starts knowing French.
french_greetings_module = create_backend_module("hello", "french", _register)
# -- end module --
