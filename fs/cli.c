#include "cli.h"

#include <string.h>

bool fs_cli_take_flag(int *argc, char **argv, const char *flag)
{
	bool found = false;
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], flag))
			found = true;
		else
			argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	return found;
}
