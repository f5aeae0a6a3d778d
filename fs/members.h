/*
 * fs/members — a mounted drive's membership as the swarmfs commands see it (private to
 * fs/): invites (swarmfs invite), the member list (swarmfs drive members), admitting
 * and removing members (swarmfs drive add-member|remove-member; a removal from a
 * private drive starts a new epoch), and the access lines of swarmfs status.
 *
 * The commands reach these through user.swarmfs.* attributes of the mount's root
 * (fs/xattr); the caller's uid was checked there. Threads: any (FUSE workers).
 * Errors: >= 0 (text: its length) on success, -errno on failure: -EPERM when this
 * node's key may not, -EROFS without a key, -EINVAL for a malformed request.
 */
#ifndef SWARMFS_FS_MEMBERS_H
#define SWARMFS_FS_MEMBERS_H

#include <stddef.h>
#include <stdio.h>

struct fs_drive;

/* "KEY role since name" a line, the admin first. *out malloc'd. */
int fs_members_text(struct fs_drive *d, char **out);
/* Make an invite; args "" or "role=producer&expires=SECONDS&name=NAME" (name
 * percent-encoded). *out: the invite's swarmfs:// URI and a newline, malloc'd. */
int fs_members_invite(struct fs_drive *d, const char *args, char **out);
/* value: "KEY", "KEY member|producer [NAME]" to admit, "KEY remove" to remove. */
int fs_members_set(struct fs_drive *d, const char *value, size_t size);
/* Append the access lines of swarmfs status to the text in *buf (open_memstream). */
void fs_members_status(struct fs_drive *d, FILE *f);

#endif
