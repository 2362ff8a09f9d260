// A shared library built with -fvisibility=hidden, as a plugin or a library wrapping rosco
// would be: its copy of the header's inline code (and of any thread_local in it) is its own.
#include "rosco.hpp"

__attribute__((visibility("default"))) void remove_in_module(rosco::Method& m) { m.remove(); }

__attribute__((visibility("default"))) void clear_exception_handler_in_module(rosco::Context& ctx) {
    ctx.on_exception(nullptr);
}
