"""Dataset readers, sample data and TFRecord conversion: sources -> DataFrame -> TFRecords."""
