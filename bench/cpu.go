package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds reads the CPU time (user + system) used so far by each part of
// the system: the API and the workers by process id, PostgreSQL, RabbitMQ and
// Redis by process name (every backend of the cluster counts), and the load
// generator (this process). A part's share over a run is the difference of
// two readings over the elapsed time.
func cpuSeconds(s *system) map[string]float64 {
	out := map[string]float64{
		"api":     procCPU(strconv.Itoa(s.api.Pid())),
		"workers": procCPU(strconv.Itoa(s.workers.Pid())),
		"load":    procCPU("self"),
	}
	byName := map[string]string{"postgres": "postgres", "beam.smp": "rabbitmq", "redis-server": "redis"}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil {
			continue
		}
		if part, ok := byName[strings.TrimSpace(string(comm))]; ok {
			out[part] += procCPU(filepath.Base(d))
		}
	}
	return out
}

// procCPU is a process's user + system CPU time in seconds, 0 if it is gone.
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// cpuCores turns two readings taken seconds apart into cores used per part.
func cpuCores(before, after map[string]float64, seconds float64) map[string]float64 {
	out := make(map[string]float64, len(after))
	for part, t := range after {
		if d := t - before[part]; d > 0 && seconds > 0 {
			out[part] = d / seconds
		}
	}
	return out
}
