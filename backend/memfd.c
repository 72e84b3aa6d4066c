#include "memfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* Seals fd and hands it back, or closes it: fd or -1. */
static int seal(int fd)
{
	int saved;

	if (fd < 0 || fcntl(fd, F_ADD_SEALS, SEALS) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int memfd_sealed(const char *name, const void *data, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd >= 0 && fd_write_all(fd, data, len)) {
		close(fd);
		return -1;
	}
	return seal(fd);
}

int memfd_sealed_copy(const char *name, int from)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	char chunk[65536];
	ssize_t n;

	while (fd >= 0 && (n = read(from, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 || fd_write_all(fd, chunk, (size_t)n)) {
			close(fd);
			fd = -1;
		}
	}
	close(from);
	return seal(fd);
}

int memfd_read(int fd, size_t max, char **data, size_t *len)
{
	struct stat st;
	size_t got = 0;
	char *p;

	*data = NULL;
	*len = 0;
	if (fstat(fd, &st))
		return -1;
	if (st.st_size < 0 || (size_t)st.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p)
		return -1;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(p);
			errno = n < 0 ? errno : EIO;
			return -1;
		}
		got += (size_t)n;
	}
	p[got] = '\0';
	*data = p;
	*len = got;
	return 0;
}
