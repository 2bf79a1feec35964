/*
 * atomic_file.c - vrld's files (see atomic_file.h).
 *
 * Why each step:
 *   - One directory fd for the whole write: the check, the create, the
 *     rename and the fsync all act on the directory that was checked, even
 *     if its path is renamed or replaced meanwhile.
 *   - O_EXCL|O_NOFOLLOW on a random name: a link or a file planted at any
 *     name makes the create fail (and we try another name); nothing is ever
 *     opened through a link.
 *   - fchmod after the create: open()'s mode is cut by the umask, fchmod's
 *     is not. The file is created 0600 and only then given its mode.
 *   - fsync of the file before the rename (the name never points at data
 *     not on disk), and of the directory after (the rename itself is on
 *     disk).
 *   - renameat replaces a link at the final name with the new file; it
 *     never writes through it.
 */
#include "atomic_file.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEMP_SUFFIX   12u     /* random characters of a temporary name */
#define TEMP_TRIES    16u     /* names tried before giving up */

/* Split @path into its directory (@dir, "." when none) and its last name. */
static int split(const char *path, char *dir, size_t dircap, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t dl;

	*base = slash ? slash + 1 : path;
	if (!**base || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0)
		return -EINVAL;
	if (strlen(*base) + TEMP_SUFFIX + 2 > NAME_MAX)
		return -ENAMETOOLONG;
	if (!slash) {
		snprintf(dir, dircap, ".");
		return 0;
	}
	dl = (size_t)(slash - path);
	if (dl == 0)
		dl = 1;          /* "/name": the root */
	if (dl >= dircap)
		return -ENAMETOOLONG;
	memcpy(dir, path, dl);
	dir[dl] = '\0';
	return 0;
}

static void owner_name(uid_t uid, char *buf, size_t cap)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, cap, "%s (uid %u)", pw.pw_name, (unsigned)uid);
	else
		snprintf(buf, cap, "uid %u", (unsigned)uid);
}

/* The directory open as @dfd (path @dir) may be written by vrld and root only. */
static int trusted_dir(int dfd, const char *dir, char *why, size_t whylen)
{
	uid_t me = geteuid();
	char owner[128], fix[2 * PATH_MAX + 64];
	struct stat st;

	if (fstat(dfd, &st) != 0) {
		int rc = -errno;

		snprintf(why, whylen, "cannot stat directory %s: %s", dir, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "%s is not a directory", dir);
		return -ENOTDIR;
	}
	if ((st.st_uid == me || st.st_uid == 0) && !(st.st_mode & (S_IWGRP | S_IWOTH)))
		return 0;
	owner_name(st.st_uid, owner, sizeof(owner));
	if (st.st_uid == me || st.st_uid == 0)
		snprintf(fix, sizeof(fix), "chmod go-w '%s'", dir);
	else
		snprintf(fix, sizeof(fix), "chown %u '%s' && chmod go-w '%s'", (unsigned)me, dir,
			 dir);
	snprintf(why, whylen, "directory %s (owner %s, mode %04o) can be written by others than "
		 "vrld (uid %u) and root, who could then replace vrld's files: make it vrld's "
		 "own (%s) or name a directory only vrld can write", dir, owner,
		 (unsigned)(st.st_mode & 07777), (unsigned)me, fix);
	return -EPERM;
}

/* Open the directory of @path, checked; its fd, or -errno with @why. */
static int open_dir(const char *path, const char **base, char *dir, size_t dircap, char *why,
		    size_t whylen)
{
	int dfd, rc = split(path, dir, dircap, base);

	if (rc) {
		snprintf(why, whylen, "%s: %s", path, rc == -EINVAL ? "expected a file name, "
			 "got a directory" : "name too long");
		return rc;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		snprintf(why, whylen, "directory %s of %s: %s", dir, path,
			 rc == -ENOENT ? "does not exist (create it, owned by vrld's user)" :
			 strerror(-rc));
		return rc;
	}
	rc = trusted_dir(dfd, dir, why, whylen);
	if (rc) {
		close(dfd);
		return rc;
	}
	return dfd;
}

int vrl_afile_check_dir(const char *path, char *why, size_t whylen)
{
	char dir[PATH_MAX];
	const char *base;
	int dfd;

	why[0] = '\0';
	dfd = open_dir(path, &base, dir, sizeof(dir), why, whylen);
	if (dfd < 0)
		return dfd;
	close(dfd);
	/* and vrld may make files in it (a write says so too, but later) */
	if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0) {
		int rc = -errno;

		snprintf(why, whylen, "directory %s of %s: vrld (uid %u) cannot create files in "
			 "it: %s", dir, path, (unsigned)geteuid(), strerror(-rc));
		return rc;
	}
	return 0;
}

/* An unpredictable ".BASE.XXXXXXXXXXXX" into @tmp. */
static void temp_name(const char *base, char *tmp, size_t cap)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char r[TEMP_SUFFIX];
	char suffix[TEMP_SUFFIX + 1];

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* no entropy yet (early boot): the name only needs to be new;
		 * O_EXCL|O_NOFOLLOW keep a guessed one harmless */
		uint64_t x = vrl_mono_ns();

		x = x * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&x;
		for (unsigned i = 0; i < TEMP_SUFFIX; i++, x = x * 6364136223846793005u + 1)
			r[i] = (unsigned char)(x >> 56);
	}
	for (unsigned i = 0; i < TEMP_SUFFIX; i++)
		suffix[i] = abc[r[i] % (sizeof(abc) - 1)];
	suffix[TEMP_SUFFIX] = '\0';
	snprintf(tmp, cap, ".%s.%s", base, suffix);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Create a fresh temporary file in @dfd; its fd, or -errno. */
static int create_temp(int dfd, const char *base, char *tmp, size_t cap)
{
	for (unsigned i = 0; i < TEMP_TRIES; i++) {
		int fd;

		temp_name(base, tmp, cap);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : -errno;
	}
	return -EEXIST;
}

/* Fill the temporary file @fd and put it in place of @base. */
static int fill_and_rename(int dfd, int fd, const char *tmp, const char *base, const void *buf,
			   size_t len, mode_t mode)
{
	int rc = 0;

	if (fchmod(fd, mode & 07777) != 0)
		rc = -errno;
	if (rc == 0)
		rc = write_all(fd, buf, len);
	/* the data is on disk before the name points at it */
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(dfd, tmp, dfd, base) != 0)
		rc = -errno;
	return rc;
}

int vrl_afile_write(const char *path, const void *buf, size_t len, mode_t mode, char *why,
		    size_t whylen)
{
	char dir[PATH_MAX], tmp[NAME_MAX + 1];
	const char *base;
	int dfd, fd, rc;

	why[0] = '\0';
	dfd = open_dir(path, &base, dir, sizeof(dir), why, whylen);
	if (dfd < 0)
		return dfd;
	fd = create_temp(dfd, base, tmp, sizeof(tmp));
	if (fd < 0) {
		snprintf(why, whylen, "cannot create a temporary file in %s for %s: %s", dir, path,
			 strerror(-fd));
		close(dfd);
		return fd;
	}
	rc = fill_and_rename(dfd, fd, tmp, base, buf, len, mode);
	if (rc) {
		snprintf(why, whylen, "cannot write %s: %s", path, strerror(-rc));
		unlinkat(dfd, tmp, 0);
		close(dfd);
		return rc;
	}
	/* and the rename itself is on disk */
	if (fsync(dfd) != 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot sync directory %s after writing %s: %s", dir, path,
			 strerror(-rc));
	}
	close(dfd);
	return rc;
}

/* ---- reading ---------------------------------------------------------------------- */

static const char *kind_of(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ?
	       "a character device" : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ?
	       "a socket" : "a special file";
}

/* @st is a regular file of at most @max bytes; else -errno with @why. */
static int regular(const char *path, const struct stat *st, size_t max, char *why,
		   size_t whylen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "%s is %s, not a regular file: expected a file", path,
			 kind_of(st->st_mode));
		return -EINVAL;
	}
	if ((uint64_t)st->st_size > (uint64_t)max) {
		snprintf(why, whylen, "%s has %lld bytes, more than the %zu expected at most",
			 path, (long long)st->st_size, max);
		return -EFBIG;
	}
	return 0;
}

static int open_regular(const char *path, size_t max, bool follow, size_t *size, char *why,
			size_t whylen)
{
	struct stat st;
	int fd, rc;

	/* judged by name first: opening a device can have effects of its own */
	if ((follow ? stat(path, &st) : lstat(path, &st)) != 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (!follow && S_ISLNK(st.st_mode)) {
		snprintf(why, whylen, "%s is a symbolic link; vrld never makes one there, so it is "
			 "not vrld's file: remove it, or name its target instead", path);
		return -ELOOP;
	}
	if ((rc = regular(path, &st, max, why, whylen)) != 0)
		return rc;
	/* and by what was opened: O_NONBLOCK, should it be a FIFO by now */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) != 0)
		rc = -errno;
	else
		rc = regular(path, &st, max, why, whylen);
	if (rc == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
		rc = -errno;
	if (rc) {
		if (!why[0])
			snprintf(why, whylen, "cannot open %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	*size = (size_t)st.st_size;
	return fd;
}

int vrl_afile_read(const char *path, size_t max, bool follow, char **out, size_t *len,
		   char *why, size_t whylen)
{
	size_t got = 0, size = 0;
	char *buf;
	int fd, rc = 0;

	why[0] = '\0';
	*out = NULL;
	*len = 0;
	fd = open_regular(path, max, follow, &size, why, whylen);
	if (fd < 0)
		return fd;
	buf = malloc(size + 2);
	if (!buf) {
		close(fd);
		snprintf(why, whylen, "out of memory reading %s", path);
		return -ENOMEM;
	}
	/* up to one byte more than its size: a file that grew is told apart */
	while (got <= size) {
		ssize_t r = read(fd, buf + got, size + 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = -errno;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (rc == 0 && got != size) {
		rc = -EAGAIN;
		snprintf(why, whylen, "%s changed size while it was read (%zu bytes, then %s%zu): "
			 "replace it by a rename, not in place", path, size, got > size ? "over " : "",
			 got);
	} else if (rc) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(-rc));
	}
	if (rc) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}
