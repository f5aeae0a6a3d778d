#include "ledger.h"

#include <sqlite3.h>

const char *ledger_sqlite_version(void)
{
	return sqlite3_libversion();
}
