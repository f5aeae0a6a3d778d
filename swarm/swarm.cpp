// The C++ shim over libtorrent. Nothing here may throw across the extern "C" edge.
#include "swarm.h"

#include <libtorrent/version.hpp>

extern "C" const char *swarm_libtorrent_version(void)
{
	return lt::version();
}
