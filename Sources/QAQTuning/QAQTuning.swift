import QAQ

/// QAQTuning: host topology (hwloc, sysfs fallback), host fingerprint, planner and profiles.
public enum QAQTuning {}
