"""Sources -> TFRecords: the dataset readers, the schema they share, and the conversion."""


def convert_dataframe(frame, out_dir: str, **options) -> dict:
    """Converts a pandas DataFrame of image paths and labels into TFRecords: see
    ``tfgender.data.convert.convert_dataframe`` (the replacement for ``flow_from_dataframe``)."""
    from tfgender.data.convert import convert_dataframe as convert

    return convert(frame, out_dir, **options)
