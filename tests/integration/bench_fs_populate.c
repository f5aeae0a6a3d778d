/* bench_fs_populate HOME NAME DIR COUNT [SUBDIRS [private]]: make drive NAME in HOME (key
 * "default"; a private drive with its first epoch if the last word is "private") holding
 * COUNT made-up file records under DIR, spread over SUBDIRS
 * subdirectories (0: all in DIR itself), in blocks of 50 (a big mempool makes each submit slower).
 * For scripts/bench/fs.sh: listing and find figures need a big namespace, not content. Prints the
 * drive id. */
#include "drive_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char id[LEDGER_HEX_LEN], path[512];
	struct ledger *l;
	long count, subdirs;
	int err;

	if (argc < 5) {
		fprintf(stderr, "usage: %s HOME NAME DIR COUNT [SUBDIRS [private]]\n", argv[0]);
		return 2;
	}
	count = atol(argv[4]);
	subdirs = argc > 5 ? atol(argv[5]) : 0;
	bool priv = argc > 6 && !strcmp(argv[6], "private");

	if ((err = priv ? itest_drive_create_private(argv[1], argv[2], "default", id)
	                : itest_drive_create(argv[1], argv[2], "default", id)) < 0 ||
	    (err = itest_drive_open(argv[1], id, "default", &l)) < 0 ||
	    /* the epoch's keys record in a block first: claims are wrapped under it */
	    (priv && ((err = ledger_epoch_rotate(l)) < 0 || (err = ledger_produce(l)) < 0))) {
		fprintf(stderr, "cannot make the drive: %s\n", strerror(-err));
		return 1;
	}
	struct ledger_op md = { .type = LEDGER_REC_MKDIR, .path = argv[3] };
	md.content.mode = 0755;
	err = ledger_submit(l, &md, NULL);
	for (long s = 0; !(err < 0) && s < subdirs; s++) {
		snprintf(path, sizeof path, "%s/d%03ld", argv[3], s);
		md.path = path;
		err = ledger_submit(l, &md, NULL);
	}
	long per = count / 250 > 50 ? count / 250 : 50;

	for (long i = 0; !(err < 0) && i < count; i++) {
		if (subdirs)
			snprintf(path, sizeof path, "%s/d%03ld/file-%07ld", argv[3], i % subdirs,
			         i);
		else
			snprintf(path, sizeof path, "%s/file-%07ld", argv[3], i);
		err = itest_claim(l, path, (uint64_t)(i % 100000) + 1, 0644, 1700000000 + i);
		/* blocks of 50 records, more for a big drive: a burst of blocks may run the
		 * chain's clock at most max_future_s / 2 (300 s) ahead of the wall clock */
		if (!(err < 0) && i % per == per - 1)
			err = ledger_produce(l);
	}
	/* a block holds 10,000 records at most: produce until nothing is pending */
	while (!(err < 0) && ledger_mempool_count(l) > 0)
		if ((err = ledger_produce(l)) == 0)
			err = -EAGAIN; /* not allowed to produce: the count would never fall */
	itest_drive_close(l);
	if (err < 0) {
		fprintf(stderr, "populating failed: %s\n", strerror(-err));
		return 1;
	}
	printf("%s\n", id);
	return 0;
}
