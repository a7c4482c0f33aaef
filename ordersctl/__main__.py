from ordersctl.cli.main import run

run()
