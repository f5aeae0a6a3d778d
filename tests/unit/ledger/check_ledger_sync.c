#include "ledger_testutil.h"
#include <stdlib.h>
int main(void) { return 0; }
