// The arena's codec (placeholder until the web client is split).
