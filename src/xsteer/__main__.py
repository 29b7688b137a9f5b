from xsteer.cli import main

main()
