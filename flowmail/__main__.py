from flowmail.cli import main

main()
