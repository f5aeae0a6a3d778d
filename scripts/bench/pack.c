/*
 * Publishing's one read of a staged file (fs/pack.h) alone, a private drive's beside a
 * public one's in the same run: the file (in the page cache) hashed into its hybrid
 * torrent, and on the private side also encrypted and written beside it (O_DIRECT), as
 * the publish worker does before the batch's syncfs. ROUNDS rounds, each one public and
 * one private pack back to back; the medians of wall and CPU seconds are printed.
 *
 *   bench_pack FILE DIR [ROUNDS]     (the ciphertext goes to DIR, removed after each)
 */
#include "cipher.h"
#include "pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "bench_clock.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	int rounds = argc > 3 ? atoi(argv[3]) : 5;
	double wall[2][64], used[2][64], mib;
	uint8_t key[FS_CIPHER_KEY_LEN];
	struct fs_cipher c;
	char out[4096];
	struct stat st;
	int64_t nonce;

	if (argc < 3 || rounds < 1 || rounds > 64 || stat(argv[1], &st) < 0) {
		fprintf(stderr, "usage: bench_pack FILE DIR [ROUNDS <= 64]\n");
		return 2;
	}
	mib = (double)st.st_size / 1048576;
	snprintf(out, sizeof out, "%s/bench-pack.cipher", argv[2]);
	for (int r = 0; r < rounds; r++) {
		for (int priv = 0; priv < 2; priv++) {
			struct fs_pack p;
			double t0, c0;
			int err;

			if (priv) {
				if (fs_cipher_new_key(key, &nonce) < 0)
					return 1;
				fs_cipher_init(&c, key, nonce);
			}
			t0 = bench_now();
			c0 = bench_cpu();
			err = fs_pack_file(argv[1], "bench", priv ? &c : NULL, out, NULL, NULL,
			                   NULL, &p);
			wall[priv][r] = bench_now() - t0;
			used[priv][r] = bench_cpu() - c0;
			if (err < 0) {
				fprintf(stderr, "pack: %s\n", strerror(-err));
				return 1;
			}
			fs_pack_release(&p);
			if (priv) {
				unlink(out);
				fs_cipher_release(&c);
			}
		}
	}
	double wp = median(wall[0], rounds), wq = median(wall[1], rounds);
	double cp = median(used[0], rounds), cq = median(used[1], rounds);

	printf("pack, public  (median of %d) %6.0f MiB/s  %.3f s wall %.3f s CPU\n", rounds,
	       mib / wp, wp, cp);
	printf("pack, private (median of %d) %6.0f MiB/s  %.3f s wall %.3f s CPU   %3.0f %% of "
	       "public\n",
	       rounds, mib / wq, wq, cq, 100 * wp / wq);
	return 0;
}
