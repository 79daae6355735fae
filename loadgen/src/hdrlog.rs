//! `--hdr-log DIR`: one standard HdrHistogram interval log per metric
//! (`DIR/input_ack.hlog`, …), one line per second of the run, compressed
//! V2 histograms in microseconds. HistogramLogAnalyzer and the Java, Go and
//! Rust HdrHistogram libraries read these files.

use crate::stats::{Interval, Metric};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Open interval logs.
pub struct HdrLogs {
    /// One file per metric, in [`Metric::ALL`] order.
    files: Vec<BufWriter<File>>,
    /// Shared compressor state.
    serializer: V2DeflateSerializer,
}

impl HdrLogs {
    /// Creates `dir` if needed and writes each log's header.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let now = SystemTime::now();
        let mut serializer = V2DeflateSerializer::new();
        let mut files = Vec::new();
        for m in Metric::ALL {
            let path = dir.join(format!("{}.hlog", m.name()));
            let mut file = BufWriter::new(File::create(&path)?);
            // The writer adds the '#' of each comment line.
            IntervalLogWriterBuilder::new()
                .add_comment(&format!(
                    "[Logged with loadgen {}]",
                    env!("CARGO_PKG_VERSION")
                ))
                .add_comment("[Histogram log format version 1.3]")
                .add_comment(&format!("[{}: values in microseconds]", m.name()))
                .with_start_time(now)
                .with_base_time(now)
                .begin_log_with(&mut file, &mut serializer)?;
            writeln!(
                file,
                "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
            )?;
            files.push(file);
        }
        Ok(Self { files, serializer })
    }

    /// Appends one interval, `start` seconds after the base time.
    pub fn write(
        &mut self,
        interval: &Interval,
        start: Duration,
        length: Duration,
    ) -> anyhow::Result<()> {
        for (m, file) in Metric::ALL.iter().zip(&mut self.files) {
            let mut log =
                IntervalLogWriterBuilder::new().begin_log_with(file, &mut self.serializer)?;
            log.write_histogram(&interval.hist[*m as usize], start, length, None)
                .map_err(|e| anyhow::anyhow!("writing the {} log: {e:?}", m.name()))?;
        }
        Ok(())
    }

    /// Flushes every file.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        for f in &mut self.files {
            f.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn logs_read_back_with_the_standard_reader() {
        let dir = std::env::temp_dir().join(format!("loadgen-hdrlog-{}", std::process::id()));
        let mut logs = HdrLogs::create(&dir).unwrap();
        let mut interval = Interval::new();
        for v in [100u64, 200, 300] {
            interval.hist[Metric::InputAck as usize].record(v).unwrap();
        }
        logs.write(&interval, Duration::ZERO, Duration::from_secs(1))
            .unwrap();
        interval.clear();
        interval.hist[Metric::InputAck as usize]
            .record(5000)
            .unwrap();
        logs.write(&interval, Duration::from_secs(1), Duration::from_secs(1))
            .unwrap();
        logs.finish().unwrap();

        let text = std::fs::read(dir.join("input_ack.hlog")).unwrap();
        assert!(String::from_utf8_lossy(&text).contains("#[Histogram log format version 1.3]"));
        let mut counts = Vec::new();
        for entry in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(ih) = entry.unwrap() {
                let bytes = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    ih.encoded_histogram(),
                )
                .unwrap();
                let h: hdrhistogram::Histogram<u64> =
                    Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                counts.push((ih.start_timestamp().as_secs(), h.len(), h.max()));
            }
        }
        assert_eq!(counts, vec![(0, 3, 300), (1, 1, 5003)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
