package bench

import (
	"os"
	"testing"
)

func TestDescribeFilesystem(t *testing.T) {
	mountinfo, err := os.ReadFile("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dir string
		journals  []string
		want      string
	}{
		{"root ext4 without a journal", "/tmp/muckwatch-bench-1/clickhouse", []string{}, "ext4 without a journal mounted at /"},
		{"root ext4 with its journal", "/tmp/muckwatch-bench-1/clickhouse", []string{"vda-8"}, "ext4 with a journal mounted at /"},
		{"another device's journal", "/tmp/x", []string{"vdb1-8"}, "ext4 without a journal mounted at /"},
		{"journals unknown", "/tmp/x", nil, "ext4 mounted at /"},
		{"tmpfs", "/dev/shm/muckwatch-bench-2/clickhouse", []string{}, "tmpfs mounted at /dev/shm"},
		{"the mount point itself", "/dev/shm", []string{}, "tmpfs mounted at /dev/shm"},
		{"a name that only starts like a mount point", "/dev/shmem/x", []string{}, "devtmpfs mounted at /dev"},
		{"the longest mount point wins", "/var/lib/clickhouse/data", []string{"vdb1-8"}, "ext4 with a journal mounted at /var/lib/clickhouse"},
		{"an escaped space in a mount point", "/mnt/fast disk/ch", []string{}, "xfs mounted at /mnt/fast disk"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, _ := describeFilesystem(string(mountinfo), c.journals, c.dir); got != c.want {
				t.Errorf("describeFilesystem(%q) = %q, want %q", c.dir, got, c.want)
			}
		})
	}
	if got, _ := describeFilesystem("garbage\n\n1 2 3\n", nil, "/tmp"); got != "" {
		t.Errorf("a mountinfo without a mount: %q, want empty", got)
	}
}

func TestFilesystemOfThisMachine(t *testing.T) {
	fs, _ := filesystemOf(t.TempDir())
	if _, err := os.Stat("/proc/self/mountinfo"); err == nil && fs == "" {
		t.Fatal("no filesystem found for a temporary folder, though /proc/self/mountinfo exists")
	}
	t.Logf("a temporary folder is on %s", fs)
}
