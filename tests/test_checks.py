from fruitlib import checks


def test_a_checkpoint_that_holds_prints_one_line(capsys):
    assert checks.expect("two plus two is four", 2 + 2 == 4, "check your arithmetic") is True
    assert capsys.readouterr().out == "Checkpoint: two plus two is four: True\n"


def test_a_checkpoint_that_fails_says_what_to_do(capsys):
    assert checks.expect("the loss fell", False, "Run the cell above again.") is False
    assert capsys.readouterr().out.splitlines() == [
        "Checkpoint: the loss fell: False",
        "  Not what you should see. Run the cell above again.",
    ]
