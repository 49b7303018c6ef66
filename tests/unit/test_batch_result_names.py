"""A batch prediction's result object per input file (evaluation-and-prediction.md §2.2)."""

from openaml.jobs.tasks import _result_uris

OUT = "s3://out/preds/batch-prediction/result/bp-1-"


def test_a_repeated_last_segment_is_named_by_its_key_relative_to_the_datasource_folder():
    """Not relative to the bucket (data_P_x_a.csv), which a client following the spec misses;
    with or without the location's trailing slash."""
    files = ["s3://bk/data/P/a.csv", "s3://bk/data/P/x/a.csv", "s3://bk/data/P/y/z/a.csv", "s3://bk/data/P/b.csv.gz"]
    for location in ("s3://bk/data/P/", "s3://bk/data/P"):
        assert _result_uris("s3://out/preds/", "bp-1", files, location) == [
            OUT + "a.csv.gz", OUT + "x_a.csv.gz", OUT + "y_z_a.csv.gz", OUT + "b.csv.gz.gz"]


def test_no_two_files_share_a_result():
    """x/a.csv is named x_a.csv, which another file's own name is: the spec's names stay
    exact, the renamed one is numbered (two files once wrote one result, losing one's records)."""
    files = ["s3://bk/f/a.csv", "s3://bk/f/x/a.csv", "s3://bk/f/x_a.csv", "s3://bk/f/x_a-2.csv", "s3://bk/f/x/y/a.csv"]
    names = _result_uris("s3://out/preds", "bp-1", files, "s3://bk/f/")
    assert names == [OUT + "a.csv.gz", OUT + "x_a-3.csv.gz", OUT + "x_a.csv.gz", OUT + "x_a-2.csv.gz",
                     OUT + "x_y_a.csv.gz"]
    assert len(set(names)) == len(files)
