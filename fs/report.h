/*
 * fs/report — what the commands print with --json about a drive's ledger (private to
 * fs/): one documented object per report (schemas in swarmfs(1)), written with
 * fs/json. The reports of later commands (credit, health) belong here too.
 *
 * Threads: the caller's; each call reads the ledger it is given and nothing else.
 * Errors: >= 0 on success, -errno on failure (ledger reads), the JSON document then
 * holding what was written before the failure.
 */
#ifndef SWARMFS_FS_REPORT_H
#define SWARMFS_FS_REPORT_H

#include "json.h"

#include <ledger.h>

/* A drive as one JSON object: brief (drive list): id, name, height; else (drive
 * show) also admin, producers, trackers, interval_s, head, weight, pending_records
 * and uri. key is the value's key in its enclosing object, NULL in an array. */
int fs_report_drive(struct fs_json *j, const char *key, struct ledger *l, bool brief);

/* The drive's swarmfs:// URI from its genesis parameters (no peers); caller frees. */
int fs_report_uri(struct ledger *l, char **out);

#endif
