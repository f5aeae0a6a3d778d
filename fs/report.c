/* --json reports of a drive's ledger (see report.h). */
#include "report.h"

#include "uri.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fs_report_uri(struct ledger *l, char **out)
{
	struct ledger_params p;
	struct fs_uri u;
	uint8_t id[32];
	int rc;

	memset(&u, 0, sizeof u);
	ledger_drive_id(l, id);
	ledger_hex(id, 32, u.drive_id);
	if ((rc = ledger_params_get(l, &p)) < 0)
		return rc;
	u.name = p.name;
	u.genesis_len = fs_uri_genesis_len(l);
	for (size_t i = 0; i < p.n_trackers && i < FS_URI_MAX_LIST; i++)
		u.trackers[u.n_trackers++] = p.trackers[i];
	rc = fs_uri_format(&u, out);
	ledger_params_release(&p);
	return rc;
}

int fs_report_drive(struct fs_json *j, const char *key, struct ledger *l, bool brief)
{
	struct ledger_params p;
	struct ledger_head h;
	uint8_t id[32];
	char *uri = NULL;
	int rc = ledger_params_get(l, &p);

	if (rc < 0)
		return rc;
	if ((rc = ledger_head_get(l, &h)) < 0) {
		ledger_params_release(&p);
		return rc;
	}
	ledger_drive_id(l, id);
	fs_json_object_begin(j, key);
	fs_json_hex(j, "id", id, sizeof id);
	fs_json_str(j, "name", p.name);
	fs_json_uint(j, "height", h.height);
	if (!brief) {
		fs_json_hex(j, "admin", p.admin, LEDGER_KEY_LEN);
		fs_json_array_begin(j, "producers");
		for (size_t i = 0; i < p.n_producers; i++)
			fs_json_hex(j, NULL, p.producers[i], LEDGER_KEY_LEN);
		fs_json_array_end(j);
		fs_json_array_begin(j, "trackers");
		for (size_t i = 0; i < p.n_trackers; i++)
			fs_json_str(j, NULL, p.trackers[i]);
		fs_json_array_end(j);
		fs_json_int(j, "interval_s", p.interval_s);
		fs_json_hex(j, "head", h.id, LEDGER_ID_LEN);
		fs_json_uint(j, "weight", h.weight);
		fs_json_int(j, "pending_records", ledger_mempool_count(l));
		rc = fs_report_uri(l, &uri);
		fs_json_str(j, "uri", rc == 0 ? uri : NULL);
		free(uri);
	}
	fs_json_object_end(j);
	ledger_params_release(&p);
	return 0;
}
