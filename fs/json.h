/*
 * fs/json — a small JSON writer for the commands' --json output (private to fs/):
 * objects, arrays, strings escaped per RFC 8259 (control characters as \uXXXX, and any
 * byte sequence that is not UTF-8 replaced by U+FFFD, so the output always parses),
 * integers, booleans and null, pretty-printed with two-space indents.
 *
 * Each document is one struct fs_json built by a single thread; there is no global
 * state. A value's key is given with the value inside an object and is NULL inside an
 * array or at the top level. Errors (out of memory, a misnested end) are remembered
 * and reported once, by fs_json_finish.
 */
#ifndef SWARMFS_FS_JSON_H
#define SWARMFS_FS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_JSON_MAX_DEPTH 32

struct fs_json {
	char *buf; /* the text so far (NUL-terminated while len > 0) */
	size_t len, cap;
	int depth;
	bool has_items[FS_JSON_MAX_DEPTH + 1]; /* per open container: a comma is due */
	int err;                               /* first error, -errno; 0 while all is well */
};

/* Start an empty document (caller-owned struct). */
void fs_json_init(struct fs_json *j);
/* Free the text of an unfinished document. */
void fs_json_release(struct fs_json *j);

void fs_json_object_begin(struct fs_json *j, const char *key);
void fs_json_object_end(struct fs_json *j);
void fs_json_array_begin(struct fs_json *j, const char *key);
void fs_json_array_end(struct fs_json *j);

/* A string; s NULL writes null. */
void fs_json_str(struct fs_json *j, const char *key, const char *s);
/* A string of at most n bytes of s (stops at a NUL). */
void fs_json_strn(struct fs_json *j, const char *key, const char *s, size_t n);
/* n bytes as a lowercase hex string. */
void fs_json_hex(struct fs_json *j, const char *key, const uint8_t *bytes, size_t n);
void fs_json_int(struct fs_json *j, const char *key, int64_t v);
void fs_json_uint(struct fs_json *j, const char *key, uint64_t v);
void fs_json_bool(struct fs_json *j, const char *key, bool v);
void fs_json_null(struct fs_json *j, const char *key);

/* End the document with a newline and hand its text to *out (free with free()).
 * Returns its length, or the first error (-ENOMEM, -EINVAL for unbalanced
 * begin/end); either way j is released. */
int fs_json_finish(struct fs_json *j, char **out);

/* fs_json_finish, then write the text to stdout. Returns 0 or the error. */
int fs_json_print(struct fs_json *j);

/* Append the JSON string literal of s (quotes included) to j's text; for writers that
 * build a value by hand. */
void fs_json_quote(struct fs_json *j, const char *s, size_t n);

#endif
