"""The input pipeline: TFRecords -> decoded, augmented, batched tensors."""
