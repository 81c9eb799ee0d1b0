"""An example Greenroom plugin distribution: a plugin, an extension-point module and a processor."""

from greenroom_hello_plugin.module import french_greetings_module
from greenroom_hello_plugin.plugin import Greetings, greetings_extension_point, hello_plugin

__all__ = ["Greetings", "french_greetings_module", "greetings_extension_point", "hello_plugin"]
