print("hostapp")
