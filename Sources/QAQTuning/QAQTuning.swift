import QAQ

/// QAQTuning: host topology (hwloc, sysfs fallback), host fingerprint, estimate-level
/// defaults, profile schema with an atomic writer and a checking loader, and the engine-side
/// ``QAQRuntime``. The planner that times kernel variants comes with the attention kernels.
///
/// - ``Topology``: packages, NUMA nodes, cores, PUs and caches, each figure with its source.
/// - ``HostFingerprint``: a stable id (`profiles/<id>.json`) and the fields it hashes.
/// - ``Estimate``: topology-derived defaults (no timing); ``RoofProbe``: read-roof sizes.
/// - ``Profile``: the JSON schema; ``Profile/load(from:)``, ``Profile/write(to:)``.
/// - ``QAQRuntime``: loads a profile once and resolves a plan per ``Problem``.
public enum QAQTuning {}
