package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Where ClickHouse keeps its parts matters to the figures: every insert writes a part of two
// files a column, and every merge another. On ext4 without a journal, creating a file skips the
// inodes deleted in the last seconds to minutes (the kernel's recently_deleted), one inode-table
// lookup each, so that after many deletions (the previous bench run's folder, a test run's)
// ClickHouse spent 16 % of its CPU working off a backlog, and 48 % in the sink's insert
// benchmark, creating files. The report names the filesystem so that figures from different
// machines, or from a run straight after another, can be told apart.

// filesystemOf describes the filesystem holding dir, as read from /proc: its type, whether an
// ext4 has a journal, and where it is mounted; journalLess reports an ext4 known to have none.
// Empty when it cannot be told.
func filesystemOf(dir string) (desc string, journalLess bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	var journals []string
	if entries, err := os.ReadDir("/proc/fs/jbd2"); err == nil {
		journals = make([]string, 0, len(entries))
		for _, e := range entries {
			journals = append(journals, e.Name())
		}
	}
	return describeFilesystem(string(mountinfo), journals, abs)
}

// describeFilesystem describes the filesystem of the mount in mountinfo (the format of
// /proc/self/mountinfo) holding the absolute path dir. journals lists /proc/fs/jbd2 (one
// DEVICE-INODE entry a journal in use); nil when it could not be read, and then an ext4 is
// described without saying whether it has one.
func describeFilesystem(mountinfo string, journals []string, dir string) (desc string, journalLess bool) {
	var point, fstype, source string
	for line := range strings.Lines(mountinfo) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS
		before, after, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(before), strings.Fields(after)
		if !ok || len(f) < 5 || len(g) < 2 {
			continue
		}
		mp := unescapeMount(f[4])
		if !under(dir, mp) || len(mp) < len(point) {
			continue
		}
		point, fstype, source = mp, g[0], g[1]
	}
	if point == "" {
		return "", false
	}
	kind := fstype
	if fstype == "ext4" && journals != nil {
		dev := filepath.Base(source) + "-"
		if slices.ContainsFunc(journals, func(j string) bool { return strings.HasPrefix(j, dev) }) {
			kind = "ext4 with a journal"
		} else {
			kind, journalLess = "ext4 without a journal", true
		}
	}
	return kind + " mounted at " + point, journalLess
}

// under reports whether path is mount point mp or inside it.
func under(path, mp string) bool {
	return mp == "/" || path == mp || strings.HasPrefix(path, mp+"/")
}

// unescapeMount undoes mountinfo's octal escapes of space, tab, newline and backslash.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}
