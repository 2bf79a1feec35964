/*
 * atomic_file.h - the files vrld writes and reads: written whole or not at
 * all, only in a directory that nobody but vrld and root can write, never
 * through a link; read only when they are regular files of a bounded size.
 *
 * Who may write a state directory (the directory of the checkpoint or of the
 * metrics textfile): vrld's effective uid and root, nobody else. A directory
 * owned by another user, or with write permission for its group or for
 * others (sticky or not: /tmp is refused), is refused with a message naming
 * it, its owner and mode, and what to do. Anyone who can write the directory
 * could otherwise swap names under vrld; vrld never follows a link there
 * anyway (O_NOFOLLOW, O_EXCL, an unpredictable temporary name), so the
 * check is the second line: it also keeps others from replacing vrld's
 * files with their own.
 *
 * A write: open the directory, check it, create ".NAME.XXXXXXXXXXXX" in it
 * (openat, O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, random suffix), set the mode
 * with fchmod (so the umask does not matter), write, fsync, renameat over
 * NAME, fsync the directory. A crash or a failure leaves the old NAME as it
 * was (the temporary file is removed on failure; one left by a crash is a
 * hidden name nobody reads).
 *
 * Thread-safe: no shared state.
 */
#ifndef VRL_ATOMIC_FILE_H
#define VRL_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Check the directory that @path (a file name) lies in: it exists, is a
 * directory, nobody but vrld's effective uid and root can write it, and
 * vrld may create files in it. Returns 0, or -errno with a message in @why:
 *   -ENOENT, -ENOTDIR  the directory is missing, or not a directory
 *   -EPERM             others can write it (owner, mode and what to do said)
 *   -EACCES            vrld may not create files in it
 *   -EINVAL            @path names no file ("", a directory, "." or "..")
 */
int vrl_afile_check_dir(const char *path, char *why, size_t whylen);

/*
 * Replace @path with @len bytes of @buf, atomically, with mode @mode
 * exactly (whatever the umask). Returns 0, or -errno with a message in @why
 * naming the file: the errors of vrl_afile_check_dir(), or of the writing.
 * On any failure @path is as it was.
 */
int vrl_afile_write(const char *path, const void *buf, size_t len, mode_t mode, char *why,
		    size_t whylen);

/*
 * Read the whole of @path, at most @max bytes, into a malloc'd buffer
 * (NUL-terminated; free it) and its length. The file must be a regular
 * file: a FIFO, a device or a directory is refused without blocking. With
 * @follow a symbolic link at @path is followed (a config managed elsewhere);
 * without, it is refused (vrld's own files, which it never makes links of).
 * Returns 0, or -errno with a message in @why naming the file:
 *   -ENOENT  no such file         -EINVAL  not a regular file
 *   -ELOOP   a link, not followed -EFBIG   larger than @max
 *   -EAGAIN  its size changed while it was read (written in place)
 */
int vrl_afile_read(const char *path, size_t max, bool follow, char **out, size_t *len,
		   char *why, size_t whylen);

#endif /* VRL_ATOMIC_FILE_H */
