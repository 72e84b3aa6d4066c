#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

/* Makes dir (0700) unless it exists as a directory of ours. */
static int own_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -1;
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int handover_path(const char *mountpoint, char *out, size_t len)
{
	const char *env = getenv("CREDFS_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char dir[PATH_MAX], hex[17];

	if (env && *env)
		snprintf(dir, sizeof(dir), "%s", env);
	else if (geteuid() == 0)
		snprintf(dir, sizeof(dir), "/run/credfs-takeover");
	else if (xdg && *xdg)
		snprintf(dir, sizeof(dir), "%s/credfs", xdg);
	else
		snprintf(dir, sizeof(dir), "/tmp/credfs-%u", (unsigned)geteuid());
	if (own_dir(dir))
		return -1;
	if (!EVP_Digest(mountpoint, strlen(mountpoint), md, &mdlen, EVP_sha256(), NULL))
		return -1;
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if ((size_t)snprintf(out, len, "%s/mount-%s.sock", dir, hex) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}
